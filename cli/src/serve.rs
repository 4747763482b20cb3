//! `sightline serve`: wires the crates together in one process.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use metrics_exporter_prometheus::PrometheusBuilder;
use sightline_alerting::Alerting;
use sightline_alerting::outbox::{OutboxSettings, SmtpSettings};
use sightline_connectors::{
    Archive, Bus, Deliver, EmbeddedBus, NatsBus, NatsConfig, Objects, Partitions, SourceMapStore,
};
use sightline_model::Envelope;
use sightline_pipeline::{Pipeline, PipelineConfig, ViewStore};
use sightline_query_api::{Access, AdminToken, AppState, Dataflow, router};
use sightline_store::{NewUser, Store, StoreError, hash_password, one_time_password};

/// Flags of `sightline serve`; each has an environment twin.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "SIGHTLINE_LISTEN", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// NATS server URL (`nats://127.0.0.1:4222`); unset: the embedded in-process bus.
    #[arg(long = "nats", env = "SIGHTLINE_NATS_URL")]
    nats_url: Option<String>,
    /// JetStream stream name in NATS mode; its subjects are `<name lowercased>.events.>`.
    #[arg(long, env = "SIGHTLINE_NATS_STREAM", default_value = "SIGHTLINE")]
    nats_stream: String,
    /// Timely worker threads; default: one per core.
    #[arg(long, env = "SIGHTLINE_WORKERS")]
    workers: Option<usize>,
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

/// Where data lives: flags shared by `serve`, `worker` and `api`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Where the archive and the default SQLite database live.
    #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "./sightline-data")]
    pub data_dir: PathBuf,
    /// Metadata database: `sqlite://…` or `postgres://…`; default: SQLite file in the data dir.
    #[arg(long, env = "SIGHTLINE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where raw events are archived and source maps kept: `file:///path`,
    /// or `s3://bucket/prefix` (endpoint and credentials from the `AWS_*`
    /// variables; sealed archive segments are shipped there, the segment
    /// being written stays in the data dir); default: the data dir's `archive/`.
    #[arg(long, env = "SIGHTLINE_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// With an `s3://` object store: seconds between shipments of the
    /// archive's sealed segments (the one being written is sealed first).
    #[arg(long, env = "SIGHTLINE_ARCHIVE_SHIP_SECONDS", default_value_t = 60, hide = true)]
    pub archive_ship_seconds: u64,
    /// Views forget event-time buckets this many days after they end.
    #[arg(long, env = "SIGHTLINE_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub retention_days: u32,
}

/// Who may call besides users: flags of the processes that serve the API.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Bootstrap secret with the admin role, for automation.
    #[arg(long, env = "SIGHTLINE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Addresses of reverse proxies in front of Sightline, whose
    /// `X-Forwarded-For` names the client (for login throttling and the
    /// audit log); comma-separated.
    #[arg(long = "trusted-proxy", env = "SIGHTLINE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
}

/// How alerts are sent: flags of the processes that send or test them.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// The dashboard's address as users reach it, for links in alert
    /// messages; default: `http://<listen>`.
    #[arg(long, env = "SIGHTLINE_PUBLIC_URL")]
    public_url: Option<String>,
    /// SMTP server for email alert channels: `smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host:465`.
    #[arg(long, env = "SIGHTLINE_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of alert emails.
    #[arg(long, env = "SIGHTLINE_SMTP_FROM", default_value = "Sightline <sightline@localhost>")]
    smtp_from: String,
    /// Refuse alert channel destinations on loopback, private, link-local
    /// and unique-local addresses (allowed by default, for self-hosting).
    #[arg(long, env = "SIGHTLINE_DENY_PRIVATE_EGRESS")]
    deny_private_egress: bool,
}

impl AlertArgs {
    pub fn outbox(&self) -> OutboxSettings {
        OutboxSettings {
            smtp: self.smtp_url.clone().map(|url| SmtpSettings { url, from: self.smtp_from.clone() }),
            deny_private_egress: self.deny_private_egress,
        }
    }

    pub fn public_url(&self, listen: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{listen}"))
    }
}

impl AccessArgs {
    pub fn access(&self) -> Access {
        Access {
            admin_token: self.admin_token.clone().and_then(AdminToken::new),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

/// The metadata store, and where the archive and the source maps are.
pub struct Storage {
    pub store: Store,
    /// The archive's folder (with a bucket: the segment being written).
    pub archive_dir: PathBuf,
    /// The `s3://` bucket, if any.
    pub bucket: Option<Objects>,
    pub retention_ms: i64,
    pub ship_every: Duration,
}

impl Storage {
    /// The archive, its sealed segments shipped to the bucket as `node`.
    pub async fn archive(&self, node: &str) -> anyhow::Result<Archive> {
        Ok(match &self.bucket {
            Some(bucket) => Archive::open_shipping(&self.archive_dir, bucket.clone(), node).await?,
            None => Archive::open(&self.archive_dir)?,
        })
    }

    /// The uploaded source maps: in the bucket, or beside the archive.
    pub fn sourcemaps(&self) -> anyhow::Result<SourceMapStore> {
        Ok(match &self.bucket {
            Some(bucket) => SourceMapStore::in_bucket(bucket.clone()),
            None => SourceMapStore::open(&self.archive_dir.join("sourcemaps"))?,
        })
    }
}

impl StorageArgs {
    pub async fn open(&self) -> anyhow::Result<Storage> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating the data dir {}", self.data_dir.display()))?;
        let data_dir = self.data_dir.canonicalize()?;
        let database_url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("sightline.db").display()),
        };
        let store = Store::connect(&database_url).await.context("opening the metadata store")?;
        let (archive_dir, bucket) = match self.object_store.as_deref() {
            None => (data_dir.join("archive"), None),
            Some(url) if url.starts_with("s3://") => (data_dir.join("archive"), Some(Objects::s3(url)?)),
            Some(url) => match url.strip_prefix("file://") {
                Some(path) if !path.is_empty() => (PathBuf::from(path), None),
                _ => bail!("--object-store: `{url}`: use s3://bucket/prefix or file:///absolute/path"),
            },
        };
        let retention_ms = i64::from(self.retention_days) * 86_400_000;
        let ship_every = Duration::from_secs(self.archive_ship_seconds.max(1));
        Ok(Storage { store, archive_dir, bucket, retention_ms, ship_every })
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    let storage = args.storage.open().await?;
    let (store, retention_ms) = (storage.store.clone(), storage.retention_ms);

    let workers = args.workers.unwrap_or_else(default_workers);
    let views = Arc::new(ViewStore::new(retention_ms));
    let pipeline = Arc::new(Pipeline::start(PipelineConfig { workers }, views)?);

    let archive = storage.archive("serve").await?;
    let sourcemaps = storage.sourcemaps()?;
    // Deleted projects' batches stay in the archive until retention; they
    // are not replayed.
    for project in store.deleted_projects().await? {
        pipeline.forget_project(&project);
    }
    let public_url = args.alerts.public_url(args.listen);
    let alerting = Alerting::start(store.clone(), pipeline.clone(), args.alerts.outbox(), public_url).await?;
    let (replayed, archived_seqs) = replay(&archive, pipeline.clone()).await?;
    if let Some(engine) = &alerting.engine {
        engine.start_evaluating();
    }
    tracing::info!(batches = replayed, "archive replayed into the pipeline");

    let expiring = archive.clone();
    let deliver: Deliver = {
        let pipeline = pipeline.clone();
        Arc::new(move |envelope: Envelope| pipeline.push(envelope))
    };
    let bus = match &args.nats_url {
        None => Bus::Embedded(EmbeddedBus::new(archive, deliver)),
        Some(url) => {
            let config = NatsConfig { url: url.clone(), stream: args.nats_stream.clone() };
            let bus = NatsBus::connect(&config).await?;
            bus.start_archiver(archive, deliver, archived_seqs, &Partitions::All).await?;
            Bus::Nats(Box::new(bus))
        }
    };
    let access = args.access.access();
    if access.admin_token.is_none() {
        create_first_owner(&store).await?;
    }
    let state = AppState::new(store, bus, Dataflow::Local(pipeline), access, metrics, sourcemaps, alerting);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    state.mark_ready();
    tokio::spawn(ship_archive(expiring.clone(), storage.ship_every));
    tokio::spawn(delete_expired_archive(expiring, retention_ms));
    tracing::info!(
        listen = %listener.local_addr()?,
        bus = state.bus.kind(),
        workers,
        ready_ms = started.elapsed().as_millis() as u64,
        "sightline is ready"
    );
    serve_http(listener, state).await
}

/// One timely worker thread per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Serves the whole HTTP API until SIGINT or SIGTERM.
pub async fn serve_http(listener: tokio::net::TcpListener, state: Arc<AppState>) -> anyhow::Result<()> {
    let stopping = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    };
    axum::serve(listener, router(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// The email of the owner account a first start makes.
pub const FIRST_OWNER_EMAIL: &str = "admin@localhost";

/// On a first start without an admin token (no user yet), the
/// organization's owner, with a one-time password printed once to stderr:
/// its first login can only set a new one.
pub async fn create_first_owner(store: &Store) -> anyhow::Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let password = one_time_password();
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&password)).await??
    };
    let owner = NewUser {
        email: FIRST_OWNER_EMAIL,
        name: "Owner",
        password_hash: &hash,
        is_owner: true,
        must_change_password: true,
    };
    match store.create_user(owner).await {
        Ok(_) => {
            eprintln!(
                "sightline: created the owner account {FIRST_OWNER_EMAIL} with the one-time password {password}\n\
                 sightline: log in with it and set a new password; it is not shown again"
            );
            Ok(())
        }
        // Another process of this deployment made it first.
        Err(StoreError::Invalid(_)) if store.user_count().await? > 0 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Feeds every archived batch to the pipeline; returns how many and the
/// JetStream sequences among them.
pub async fn replay(archive: &Archive, pipeline: Arc<Pipeline>) -> anyhow::Result<(u64, HashSet<u64>)> {
    let archive = archive.clone();
    tokio::task::spawn_blocking(move || {
        let mut seqs = HashSet::new();
        let count = archive.replay(|batch| {
            if let Some(seq) = batch.source_seq {
                seqs.insert(seq);
            }
            match Envelope::decode(&batch.payload) {
                Ok(envelope) => pipeline.push(envelope),
                Err(e) => tracing::error!(error = %e, "skipping an unreadable archived batch"),
            }
        })?;
        Ok((count, seqs))
    })
    .await?
}

/// With a bucket, ships the archive's sealed segments there every
/// `every` (a no-op without one).
pub async fn ship_archive(archive: Archive, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match archive.ship().await {
            Ok(0) => {}
            Ok(segments) => tracing::debug!(segments, "archive segments shipped to the object store"),
            Err(e) => tracing::warn!(error = %e, "shipping archive segments to the object store; retrying"),
        }
    }
}

/// Every hour, deletes archive segments whose events are all past the
/// retention window: a segment last written at `w` holds events of at most
/// `w + 1 day` (later client clocks are corrected at ingest), whose day
/// buckets end at most a day after that.
pub async fn delete_expired_archive(archive: Archive, retention_ms: i64) {
    let keep = Duration::from_millis(u64::try_from(retention_ms).unwrap_or(0)) + Duration::from_secs(2 * 86_400);
    let mut every = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        every.tick().await;
        let Some(cutoff) = SystemTime::now().checked_sub(keep) else { continue };
        let archive = archive.clone();
        match tokio::task::spawn_blocking(move || archive.delete_sealed_before(cutoff)).await {
            Ok(Ok(deleted)) if deleted.segments > 0 => {
                tracing::info!(segments = deleted.segments, bytes = deleted.bytes, "deleted archive past retention")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "deleting archive past retention"),
            Err(e) => tracing::error!(error = %e, "archive retention task"),
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
