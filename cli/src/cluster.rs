//! `sightline worker` and `sightline api`: Sightline as a cluster.
//!
//! Worker processes form one timely cluster. Each archives its share of
//! the JetStream partitions; process 0 makes every batch's rows, holds the
//! views, runs the alert engine and the outbox, and publishes each applied
//! tick on the view feed. API nodes take ingest (publishing to JetStream)
//! and answer queries from views of their own, fed by the view feed. A
//! timely cluster is fail-stop: when any worker process dies, the others
//! exit too, and their supervisor (systemd, Kubernetes, compose) starts
//! them again; they replay their archives and go on from their consumers'
//! acknowledged sequences, while API nodes keep answering from the views
//! they have, marked stale.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use futures::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use sightline_alerting::Alerting;
use sightline_connectors::{Bus, Deliver, NatsBus, NatsConfig, Partitions, ViewFeed};
use sightline_model::Envelope;
use sightline_pipeline::{ClusterConfig, FeedWriter, Pipeline, PipelineConfig, Replica, ViewStore, now_ms};
use sightline_query_api::{AppState, Dataflow};

use crate::serve::{
    AccessArgs, AlertArgs, StorageArgs, create_first_owner, default_workers, delete_expired_archive, replay,
    serve_http, ship_archive, shutdown_signal,
};

/// The exit code of a worker process that stops because its cluster lost
/// a process: its supervisor starts it again.
const CLUSTER_LOST: i32 = 70;

/// The NATS flags of a cluster's processes, which need NATS.
#[derive(Debug, Args)]
pub struct ClusterNats {
    /// NATS server URL.
    #[arg(long = "nats", env = "SIGHTLINE_NATS_URL")]
    nats_url: String,
    /// JetStream stream name; the view feed's stream is `<name>_VIEWS`.
    #[arg(long, env = "SIGHTLINE_NATS_STREAM", default_value = "SIGHTLINE")]
    nats_stream: String,
}

impl ClusterNats {
    fn config(&self) -> NatsConfig {
        NatsConfig { url: self.nats_url.clone(), stream: self.nats_stream.clone() }
    }
}

/// Flags of `sightline worker`; each has an environment twin.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// This process's index among the peers, from 0.
    #[arg(long, env = "SIGHTLINE_PROCESS")]
    process: usize,
    /// Every worker process's timely address (`host:port`), in process
    /// order, comma-separated; or use `--hostfile`.
    #[arg(long, env = "SIGHTLINE_PEERS", value_delimiter = ',', conflicts_with = "hostfile")]
    peers: Vec<String>,
    /// A file with one `host:port` per line, in process order.
    #[arg(long, env = "SIGHTLINE_HOSTFILE")]
    hostfile: Option<PathBuf>,
    /// How many worker processes the cluster has: checked against the peers.
    #[arg(long, env = "SIGHTLINE_PROCESSES")]
    processes: Option<usize>,
    /// Timely worker threads in this process; default: one per core.
    #[arg(long, env = "SIGHTLINE_WORKERS")]
    workers: Option<usize>,
    /// Address of this process's `/healthz` and `/metrics`.
    #[arg(long, env = "SIGHTLINE_LISTEN", default_value = "127.0.0.1:7800")]
    listen: SocketAddr,
    #[command(flatten)]
    nats: ClusterNats,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

/// Flags of `sightline api`; each has an environment twin.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "SIGHTLINE_LISTEN", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    #[command(flatten)]
    nats: ClusterNats,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

impl WorkerArgs {
    fn cluster(&self) -> anyhow::Result<ClusterConfig> {
        let peers = match &self.hostfile {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the hostfile {}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned)
                .collect(),
            None => self.peers.clone(),
        };
        if peers.is_empty() {
            bail!("--peers or --hostfile: name every worker process's address");
        }
        if let Some(processes) = self.processes
            && processes != peers.len()
        {
            bail!("--processes is {processes} but {} peers are named", peers.len());
        }
        if self.process >= peers.len() {
            bail!("--process {} is not among the {} peers", self.process, peers.len());
        }
        Ok(ClusterConfig { process: self.process, peers })
    }
}

/// What a worker process's `/healthz` says.
#[derive(Serialize)]
struct WorkerHealth {
    /// `ok` once the process has replayed its archive and follows its
    /// partitions (process 0: once the views hold every process's replay).
    status: &'static str,
    role: &'static str,
    process: usize,
    processes: usize,
    partitions: Vec<u32>,
}

struct WorkerState {
    health: std::sync::Mutex<WorkerHealth>,
    metrics: PrometheusHandle,
}

pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = args.cluster()?;
    let (process, processes) = (cluster.process, cluster.peers.len());
    // Fail-stop: a panic anywhere (a peer's connection lost is one, in
    // timely's network threads) ends the process, and the supervisor
    // starts the cluster again.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("sightline worker: stopping, so that the cluster restarts");
        std::process::exit(CLUSTER_LOST);
    }));
    // Nothing to flush on a stop: every batch is archived (and synced)
    // before JetStream is told, and the views are rebuilt on start.
    tokio::spawn(async {
        shutdown_signal().await;
        std::process::exit(0);
    });
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    let storage = args.storage.open().await?;
    let (store, retention_ms) = (storage.store.clone(), storage.retention_ms);
    let partitions = Partitions::of_process(process, processes);
    let Partitions::Some(owned) = &partitions else { unreachable!("a process's partitions") };
    let state = Arc::new(WorkerState {
        health: std::sync::Mutex::new(WorkerHealth {
            status: "starting",
            role: "worker",
            process,
            processes,
            partitions: owned.clone(),
        }),
        metrics,
    });
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let router = axum::Router::new()
        .route("/healthz", get(worker_health))
        .route("/metrics", get(worker_metrics))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let nats = args.nats.config();
    let views = Arc::new(ViewStore::new(retention_ms));
    let ready = Arc::new(AtomicBool::new(false));
    let on_tick = if process == 0 { Some(start_view_feed(&nats, views.clone(), ready.clone()).await?) } else { None };
    let workers = args.workers.unwrap_or_else(default_workers);
    tracing::info!(process, processes, "connecting to the cluster's other worker processes");
    let pipeline = {
        let views = views.clone();
        tokio::task::spawn_blocking(move || {
            Pipeline::start_in_cluster(PipelineConfig { workers }, Some(cluster), views, on_tick)
        })
        .await??
    };
    let pipeline = Arc::new(pipeline);
    let archive = storage.archive(&format!("worker-{process}")).await?;
    let alerting = if process == 0 {
        for project in store.deleted_projects().await? {
            pipeline.forget_project(&project);
        }
        let public_url = args.alerts.public_url(args.listen);
        let alerting = Alerting::start(store.clone(), pipeline.clone(), args.alerts.outbox(), public_url).await?;
        Some(alerting)
    } else {
        None
    };
    let (replayed, archived_seqs) = replay(&archive, pipeline.clone()).await?;
    pipeline.replay_handed_over();
    tracing::info!(batches = replayed, "archive replayed into the pipeline");
    let deliver: Deliver = {
        let pipeline = pipeline.clone();
        Arc::new(move |envelope: Envelope| pipeline.push(envelope))
    };
    let bus = NatsBus::connect(&nats).await?;
    bus.start_archiver(archive.clone(), deliver, archived_seqs, &partitions).await?;
    tokio::spawn(ship_archive(archive.clone(), storage.ship_every));
    tokio::spawn(delete_expired_archive(archive, retention_ms));
    if let Some(alerting) = alerting {
        // The views hold everything archived before the start once every
        // process's replay has reached process 0 and been applied.
        while !pipeline.cluster_replayed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = now_ms();
        while views.applied_through() <= seen {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ready.store(true, Ordering::Release);
        if let Some(engine) = alerting.engine.clone() {
            engine.start_evaluating();
            tokio::spawn(follow_the_store(engine, store.clone(), pipeline.clone()));
        }
    }
    state.health.lock().unwrap_or_else(|e| e.into_inner()).status = "ok";
    tracing::info!(
        process,
        processes,
        workers,
        partitions = ?owned,
        ready_ms = started.elapsed().as_millis() as u64,
        "sightline worker is ready"
    );
    std::future::pending().await
}

/// Process 0's view feed: a generation named by this start, each applied
/// tick published in order (the applier waits while the publisher is
/// behind); older generations are purged once this one's first tick is
/// stored.
async fn start_view_feed(
    nats: &NatsConfig,
    views: Arc<ViewStore>,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<sightline_pipeline::runtime::TickHook> {
    let feed = ViewFeed::connect(nats).await?;
    let generation = now_ms();
    let (send, mut to_publish) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let mut first = true;
        while let Some(payload) = to_publish.recv().await {
            // A feed with a hole is useless to a replica: retry until stored.
            let seq = loop {
                match feed.publish(payload.clone()).await {
                    Ok(seq) => break seq,
                    Err(e) => {
                        tracing::warn!(error = %e, "publishing the view feed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            if std::mem::take(&mut first)
                && let Err(e) = feed.purge_before(seq).await
            {
                tracing::warn!(error = %e, "purging older generations of the view feed");
            }
        }
    });
    tracing::info!(generation, "publishing the view feed");
    let writer = FeedWriter::new(
        views,
        generation,
        ready,
        Box::new(move |payload| {
            if send.blocking_send(payload).is_err() {
                tracing::error!("the view feed's publisher has stopped");
            }
        }),
    );
    Ok(writer.into_hook())
}

/// Every few seconds, what changed in the store through the API nodes:
/// alert rules (reloaded into the dataflow) and deleted projects.
async fn follow_the_store(
    engine: Arc<sightline_alerting::engine::AlertEngine>,
    store: sightline_store::Store,
    pipeline: Arc<Pipeline>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    let mut deleted = std::collections::HashSet::new();
    loop {
        every.tick().await;
        if let Err(e) = engine.sync_with_store().await {
            tracing::warn!(error = %e, "reading alert rules from the store");
        }
        for project in newly_deleted(&store, &mut deleted).await {
            pipeline.forget_project(&project);
        }
    }
}

/// The projects deleted since the last call, `seen` holding those before.
async fn newly_deleted(store: &sightline_store::Store, seen: &mut std::collections::HashSet<String>) -> Vec<String> {
    match store.deleted_projects().await {
        Ok(projects) => projects.into_iter().filter(|p| seen.insert(p.clone())).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading deleted projects from the store");
            Vec::new()
        }
    }
}

async fn worker_health(State(state): State<Arc<WorkerState>>) -> impl IntoResponse {
    let health = state.health.lock().unwrap_or_else(|e| e.into_inner());
    let status = if health.status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::to_value(&*health).unwrap_or_default()))
}

async fn worker_metrics(State(state): State<Arc<WorkerState>>) -> impl IntoResponse {
    state.metrics.render()
}

pub async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    let storage = args.storage.open().await?;
    let (store, retention_ms) = (storage.store.clone(), storage.retention_ms);
    let sourcemaps = storage.sourcemaps()?;
    let nats = args.nats.config();
    let replica = Arc::new(Replica::new(retention_ms));
    for project in store.deleted_projects().await? {
        replica.forget_project(&project);
    }
    let feed = ViewFeed::connect(&nats).await?;
    tokio::spawn(follow_view_feed(feed, replica.clone()));
    tokio::spawn(forget_deleted_projects(store.clone(), replica.clone()));
    let bus = Bus::Nats(Box::new(NatsBus::connect(&nats).await?));
    let access = args.access.access();
    if access.admin_token.is_none() {
        create_first_owner(&store).await?;
    }
    let alerting = Alerting::without_engine(store.clone(), args.alerts.outbox(), args.alerts.public_url(args.listen));
    let state = AppState::new(store, bus, Dataflow::Replica(replica.clone()), access, metrics, sourcemaps, alerting);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    {
        let state = state.clone();
        tokio::spawn(async move {
            while !replica.is_ready() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            state.mark_ready();
            tracing::info!(
                generation = replica.generation(),
                ready_ms = started.elapsed().as_millis() as u64,
                "sightline api node serves the workers' views"
            );
        });
    }
    tracing::info!(listen = %listener.local_addr()?, "sightline api node is listening");
    serve_http(listener, state).await
}

/// Every few seconds, drops the projects deleted through another node from
/// the replica's views.
async fn forget_deleted_projects(store: sightline_store::Store, replica: Arc<Replica>) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    let mut deleted = std::collections::HashSet::new();
    loop {
        every.tick().await;
        for project in newly_deleted(&store, &mut deleted).await {
            replica.forget_project(&project);
        }
    }
}

/// Applies the view feed to the replica, from the first message the
/// stream holds; after a gap or a lost connection, follows it again from
/// there (the served views stay until a generation is ready again).
async fn follow_view_feed(feed: ViewFeed, replica: Arc<Replica>) {
    loop {
        replica.restart_following();
        match feed.follow().await {
            Ok(messages) => {
                let mut messages = std::pin::pin!(messages);
                while let Some(message) = messages.next().await {
                    let applied = message.map_err(anyhow::Error::from).and_then(|bytes| {
                        let replica = replica.clone();
                        // Applying may take a while for a big tick.
                        tokio::task::block_in_place(move || replica.receive(&bytes)).map_err(anyhow::Error::from)
                    });
                    if let Err(e) = applied {
                        tracing::warn!(error = %e, "following the view feed again from its start");
                        break;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow the view feed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
