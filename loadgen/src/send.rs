//! Sending prepared batches: over HTTP to the ingest API, or straight onto
//! the JetStream stream the server reads; open-loop at a rate, or as fast as
//! the target takes them.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use serde_json::{Value, json};
use sightline_connectors::NatsConfig;

use crate::encode::{Batch, BatchFormat};
use crate::workload::USER_AGENTS;

/// Where batches go.
pub enum Target {
    /// `POST <ingest_url>` with each project's ingest key (by workload
    /// project index).
    Http { client: reqwest::Client, ingest_url: String, keys: Vec<String> },
    /// JetStream publishes with acks, on each project's subject (batches
    /// must be [`crate::BatchFormat::Envelope`]s).
    Nats { js: jetstream::Context, subjects: Vec<String> },
}

/// Tries per batch: a refused batch is sent again after 50, 100, 200, 400,
/// 800 ms, then every 800 ms.
pub const ATTEMPTS: u32 = 10;

/// How fast to send.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Events per second offered, on a fixed schedule whatever the answers
    /// (open loop); `None`: the next batch as soon as a sender is free.
    pub rate: Option<f64>,
    /// Batches in flight.
    pub concurrency: usize,
    /// Stop sending after this long, even with batches left.
    pub limit: Option<Duration>,
}

/// What a run sent and what the target took.
#[derive(Debug, Default, Clone)]
pub struct SendReport {
    pub batches_sent: u64,
    pub events_sent: u64,
    pub events_accepted: u64,
    pub pageviews_accepted: u64,
    /// Page views accepted per workload project.
    pub pageviews_by_project: Vec<u64>,
    /// Answers other than acceptance (429 when the pipeline is behind), or
    /// none: each is retried after a backoff, as the SDKs do.
    pub batches_refused: u64,
    /// Batches still refused after [`ATTEMPTS`] tries: their events are lost.
    pub batches_lost: u64,
    pub seconds: f64,
    /// Open loop: the most a batch went out after its scheduled time, a
    /// sign that the target (or the sender) fell behind.
    pub max_behind_ms: f64,
    /// From a batch's send to the target's acceptance (the last try's),
    /// ms: p50, p99 and the most.
    pub ack_ms: [f64; 3],
}

impl SendReport {
    pub fn events_per_second(&self) -> f64 {
        self.events_accepted as f64 / self.seconds.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "batches_sent": self.batches_sent,
            "events_sent": self.events_sent,
            "events_accepted": self.events_accepted,
            "batches_refused": self.batches_refused,
            "batches_lost": self.batches_lost,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "events_per_second": self.events_per_second().round(),
            "max_behind_ms": self.max_behind_ms.round(),
            "ack_ms": { "p50": self.ack_ms[0], "p99": self.ack_ms[1], "max": self.ack_ms[2] },
        })
    }
}

impl Target {
    /// Where to send these server projects' batches, and how to encode
    /// them: the ingest API at `server`, or with `nats`, straight onto that
    /// stream.
    pub async fn for_projects(
        client: reqwest::Client,
        server: &str,
        projects: &[ServerProject],
        nats: Option<&NatsConfig>,
    ) -> anyhow::Result<(BatchFormat, Target)> {
        Ok(match nats {
            Some(config) => {
                let js = jetstream::new(async_nats::connect(config.url.as_str()).await?);
                let subjects = projects.iter().map(|p| config.subject(&p.id)).collect();
                let project_ids = projects.iter().map(|p| p.id.clone()).collect();
                (BatchFormat::Envelope { project_ids }, Target::Nats { js, subjects })
            }
            None => {
                let ingest_url = format!("{server}/api/v1/ingest");
                let keys = projects.iter().map(|p| p.ingest_key.clone()).collect();
                (BatchFormat::IngestJson, Target::Http { client, ingest_url, keys })
            }
        })
    }

    /// Sends one batch; the events the target accepted.
    async fn send(&self, batch: &Batch) -> anyhow::Result<u64> {
        match self {
            Target::Http { client, ingest_url, keys } => {
                let answer = client
                    .post(ingest_url)
                    .header("X-Sightline-Key", &keys[batch.project])
                    .header("User-Agent", USER_AGENTS[batch.agent].0)
                    .header("Content-Type", "application/json")
                    .body(batch.body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(answer.status() == 202, "ingest answered {}", answer.status());
                let answer: Value = answer.json().await?;
                answer["accepted"].as_u64().context("no `accepted` in the ingest's answer")
            }
            Target::Nats { js, subjects } => {
                let message = jetstream::message::PublishMessage::build()
                    .message_id(uuid::Uuid::now_v7().to_string())
                    .payload(batch.body.clone());
                js.send_publish(subjects[batch.project].clone(), message).await?.await?;
                Ok(batch.events as u64)
            }
        }
    }
}

/// Sends `batches[range]` in order, `pace.concurrency` at a time.
pub async fn send(batches: Arc<Vec<Batch>>, range: Range<usize>, target: Arc<Target>, pace: Pace) -> SendReport {
    // With a rate, batch i is due when the events before it are.
    let mut due_s = Vec::with_capacity(range.len());
    let mut before = 0u64;
    for batch in &batches[range.clone()] {
        due_s.push(pace.rate.map_or(0.0, |rate| before as f64 / rate));
        before += batch.events as u64;
    }
    let due_s = Arc::new(due_s);
    let next = Arc::new(AtomicUsize::new(0));
    let projects = batches.iter().map(|b| b.project + 1).max().unwrap_or(0);
    let totals = Arc::new(Counters {
        pageviews_by_project: (0..projects).map(|_| AtomicU64::new(0)).collect(),
        ..Counters::default()
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..pace.concurrency.max(1))
        .map(|_| {
            let (batches, target, next, totals, due_s) =
                (batches.clone(), target.clone(), next.clone(), totals.clone(), due_s.clone());
            let offset = range.start;
            tokio::spawn(async move {
                let mut acks_us = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= due_s.len() || pace.limit.is_some_and(|limit| started.elapsed() >= limit) {
                        break;
                    }
                    if pace.rate.is_some() {
                        let due = started + Duration::from_secs_f64(due_s[i]);
                        let now = Instant::now();
                        if now < due {
                            tokio::time::sleep_until(due.into()).await;
                        } else {
                            let behind_us = (now - due).as_micros() as u64;
                            totals.max_behind_us.fetch_max(behind_us, Ordering::Relaxed);
                        }
                    }
                    let batch = &batches[offset + i];
                    totals.batches_sent.fetch_add(1, Ordering::Relaxed);
                    totals.events_sent.fetch_add(batch.events as u64, Ordering::Relaxed);
                    let mut attempt = 0;
                    loop {
                        let sent_at = Instant::now();
                        match target.send(batch).await {
                            Ok(accepted) => {
                                acks_us.push(sent_at.elapsed().as_micros() as u32);
                                totals.events_accepted.fetch_add(accepted, Ordering::Relaxed);
                                totals.pageviews_accepted.fetch_add(batch.pageviews as u64, Ordering::Relaxed);
                                totals.pageviews_by_project[batch.project]
                                    .fetch_add(batch.pageviews as u64, Ordering::Relaxed);
                                break;
                            }
                            Err(_) => {
                                totals.batches_refused.fetch_add(1, Ordering::Relaxed);
                                attempt += 1;
                                if attempt == ATTEMPTS {
                                    totals.batches_lost.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(25 << attempt.min(5))).await;
                            }
                        }
                    }
                }
                acks_us
            })
        })
        .collect();
    let mut acks_us = Vec::new();
    for task in tasks {
        acks_us.extend(task.await.unwrap_or_default());
    }
    acks_us.sort_unstable();
    let ack_ms = |q: f64| {
        let at = ((acks_us.len().max(1) - 1) as f64 * q).round() as usize;
        acks_us.get(at).map_or(0.0, |us| (*us as f64 / 100.0).round() / 10.0)
    };
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    SendReport {
        batches_sent: load(&totals.batches_sent),
        events_sent: load(&totals.events_sent),
        events_accepted: load(&totals.events_accepted),
        pageviews_accepted: load(&totals.pageviews_accepted),
        pageviews_by_project: totals.pageviews_by_project.iter().map(load).collect(),
        batches_refused: load(&totals.batches_refused),
        batches_lost: load(&totals.batches_lost),
        seconds: started.elapsed().as_secs_f64(),
        max_behind_ms: load(&totals.max_behind_us) as f64 / 1000.0,
        ack_ms: [ack_ms(0.5), ack_ms(0.99), ack_ms(1.0)],
    }
}

/// The senders' shared tallies.
#[derive(Default)]
struct Counters {
    batches_sent: AtomicU64,
    events_sent: AtomicU64,
    events_accepted: AtomicU64,
    pageviews_accepted: AtomicU64,
    pageviews_by_project: Vec<AtomicU64>,
    batches_refused: AtomicU64,
    batches_lost: AtomicU64,
    max_behind_us: AtomicU64,
}

/// A project made on the server for the load: its id and ingest key.
#[derive(Debug, Clone)]
pub struct ServerProject {
    pub id: String,
    pub ingest_key: String,
}

/// Creates `count` projects named `<prefix>-<i>` through the admin API.
pub async fn create_projects(
    client: &reqwest::Client,
    base_url: &str,
    admin_token: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<ServerProject>> {
    let mut projects = Vec::with_capacity(count);
    for i in 0..count {
        let answer: Value = client
            .post(format!("{base_url}/api/v1/projects"))
            .bearer_auth(admin_token)
            .json(&json!({ "name": format!("{prefix}-{i}") }))
            .send()
            .await?
            .error_for_status()
            .context("creating a project (is the admin token right?)")?
            .json()
            .await?;
        let field = |name: &str| answer[name].as_str().map(str::to_owned).with_context(|| format!("no `{name}`"));
        projects.push(ServerProject { id: field("id")?, ingest_key: field("ingest_key")? });
    }
    Ok(projects)
}
