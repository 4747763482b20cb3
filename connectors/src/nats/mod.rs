//! The NATS JetStream bus.
//!
//! The ingest publishes one message per accepted batch with the batch id as
//! `Nats-Msg-Id` (so a retried publish is stored once) and answers only after
//! JetStream acknowledged it. An archiver reads the stream through a durable
//! pull consumer, appends each batch to the archive with its stream sequence,
//! and acknowledges only after that append was flushed. A message redelivered
//! after a crash between append and ack is recognised by its sequence and
//! not delivered twice.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use sightline_model::Envelope;

use crate::archive::Archive;
use crate::bus::{BusError, Deliver};
use crate::telemetry;

pub mod views;

/// Where and under which names Sightline uses JetStream.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    /// The stream's name; its subjects are `<name lowercased>.events.>`.
    pub stream: String,
}

impl NatsConfig {
    /// The subject a project's batches are published on:
    /// `<prefix>.<partition>.<project id>`.
    pub fn subject(&self, project_id: &str) -> String {
        format!("{}.{}.{project_id}", self.subject_prefix(), partition_of(project_id))
    }

    fn subject_prefix(&self) -> String {
        format!("{}.events", self.stream.to_ascii_lowercase())
    }
}

/// The name of the durable consumer the archiver of `sightline serve`
/// reads every partition through.
pub const ARCHIVER_CONSUMER: &str = "sightline-archiver";

/// How many partitions the stream's subjects are split into. A worker
/// process of a cluster reads the partitions `p` with `p % processes ==
/// process`, each through its own durable consumer, so clusters of up to
/// this many processes need no change of the subjects.
pub const PARTITIONS: u32 = 16;

/// A project's partition: every batch of a project is in one partition, so
/// one worker process archives all of it, in order (FNV-1a: stable across
/// builds and machines).
pub fn partition_of(project_id: &str) -> u32 {
    let hash =
        project_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % u64::from(PARTITIONS)) as u32
}

/// Which of the stream's batches an archiver reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitions {
    /// Every partition, through one consumer (`sightline serve`).
    All,
    /// These partitions, each through its own durable consumer (a worker
    /// process of a cluster).
    Some(Vec<u32>),
}

impl Partitions {
    /// The partitions process `process` of `processes` reads.
    pub fn of_process(process: usize, processes: usize) -> Partitions {
        Partitions::Some((0..PARTITIONS).filter(|p| *p as usize % processes.max(1) == process).collect())
    }
}

/// Publishes batches to JetStream.
pub struct NatsBus {
    js: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
}

pub(crate) fn nats_err(e: impl std::fmt::Display) -> BusError {
    BusError::Nats(e.to_string())
}

/// A JetStream context on a new connection to `config.url`.
pub(crate) async fn connect_jetstream(config: &NatsConfig) -> Result<jetstream::Context, BusError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(config.url.as_str())
        .await
        .map_err(|e| BusError::Nats(format!("cannot connect to {}: {e}", config.url)))?;
    Ok(jetstream::new(client))
}

impl NatsBus {
    /// Connects and creates the stream when it is missing.
    pub async fn connect(config: &NatsConfig) -> Result<NatsBus, BusError> {
        let js = connect_jetstream(config).await?;
        let prefix = config.subject_prefix();
        let stream = js
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        Ok(NatsBus { js, stream, prefix })
    }

    pub(crate) async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        let subject = format!("{}.{}.{}", self.prefix, partition_of(&envelope.project_id), envelope.project_id);
        let publish = jetstream::message::PublishMessage::build()
            .message_id(envelope.batch_id.to_string())
            .payload(envelope.encode().into());
        let ack = self.js.send_publish(subject, publish).await.map_err(nats_err)?;
        ack.await.map_err(nats_err)?;
        Ok(())
    }

    /// Starts the archiver: reads `partitions` of the stream from where
    /// their durable consumers left off, archives, acknowledges and
    /// delivers each batch. `archived` holds the stream sequences already in
    /// the archive.
    pub async fn start_archiver(
        &self,
        archive: Archive,
        deliver: Deliver,
        archived: HashSet<u64>,
        partitions: &Partitions,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, BusError> {
        let consumers: Vec<(String, Option<String>)> = match partitions {
            Partitions::All => vec![(ARCHIVER_CONSUMER.to_owned(), None)],
            Partitions::Some(owned) => owned
                .iter()
                .map(|p| (format!("{ARCHIVER_CONSUMER}-{p}"), Some(format!("{}.{p}.>", self.prefix))))
                .collect(),
        };
        let mut tasks = Vec::new();
        for (name, filter) in consumers {
            let task = self.start_consumer(name, filter, archive.clone(), deliver.clone(), archived.clone()).await?;
            tasks.push(task);
        }
        Ok(tasks)
    }

    async fn start_consumer(
        &self,
        name: String,
        filter_subject: Option<String>,
        archive: Archive,
        deliver: Deliver,
        mut archived: HashSet<u64>,
    ) -> Result<tokio::task::JoinHandle<()>, BusError> {
        // Messages a crashed process had fetched but not acknowledged would
        // only come back after `ack_wait`. So the consumer is recreated at
        // its ack floor: everything unacknowledged is delivered at once, and
        // what was archived already is recognised by its sequence below.
        let existing = self.stream.consumer_info(&name).await.ok();
        let floor = existing.as_ref().map_or(0, |info| info.ack_floor.stream_sequence);
        if existing.is_some() {
            self.stream.delete_consumer(&name).await.map_err(nats_err)?;
        }
        let deliver_policy = match floor {
            0 => consumer::DeliverPolicy::All,
            floor => consumer::DeliverPolicy::ByStartSequence { start_sequence: floor + 1 },
        };
        let mut consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: filter_subject.unwrap_or_default(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 20_000,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        archived.retain(|seq| *seq > floor);
        let messages = consumer.messages().await.map_err(nats_err)?;
        tokio::spawn(report_pending(self.stream.clone(), name));
        Ok(tokio::spawn(async move {
            let mut chunks = messages.ready_chunks(512);
            while let Some(chunk) = chunks.next().await {
                archive_chunk(chunk, &archive, &deliver, &mut archived).await;
                metrics::gauge!(telemetry::NATS_REDELIVERY_GUARD).set(archived.len() as f64);
                if archived.len() > 100_000
                    && let Ok(info) = consumer.info().await
                {
                    let floor = info.ack_floor.stream_sequence;
                    archived.retain(|seq| *seq > floor);
                }
            }
            tracing::error!("JetStream message stream ended; the archiver stopped");
        }))
    }
}

/// Every few seconds, how far the archiver trails the stream.
async fn report_pending(stream: stream::Stream, consumer: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        match stream.consumer_info(&consumer).await {
            Ok(info) => {
                let pending = (info.num_pending + info.num_ack_pending as u64) as f64;
                // `serve`'s one consumer keeps the unlabelled series; a
                // worker's, one per partition, are labelled.
                if consumer == ARCHIVER_CONSUMER {
                    metrics::gauge!(telemetry::NATS_CONSUMER_PENDING).set(pending);
                } else {
                    metrics::gauge!(telemetry::NATS_CONSUMER_PENDING, "consumer" => consumer.clone()).set(pending);
                }
            }
            Err(e) => tracing::debug!(error = %e, "consumer info unavailable"),
        }
    }
}

type MessageResult = Result<jetstream::Message, jetstream::consumer::pull::MessagesError>;

async fn archive_chunk(chunk: Vec<MessageResult>, archive: &Archive, deliver: &Deliver, archived: &mut HashSet<u64>) {
    let mut pending = Vec::with_capacity(chunk.len());
    for message in chunk {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "JetStream fetch failed; retrying");
                continue;
            }
        };
        let Ok(info) = message.info() else {
            tracing::warn!("JetStream message without metadata; skipped");
            continue;
        };
        let seq = info.stream_sequence;
        if archived.contains(&seq) {
            // Archived before a crash, acknowledged too late: already counted.
            let _ = message.ack().await;
            continue;
        }
        match Envelope::decode(&message.payload) {
            Ok(envelope) => pending.push((seq, message, envelope)),
            Err(e) => {
                tracing::warn!(seq, error = %e, "dropping a message that is not an envelope");
                metrics::counter!(telemetry::EVENTS_REJECTED, "reason" => "bad_bus_message").increment(1);
                let _ = message.ack_with(jetstream::AckKind::Term).await;
            }
        }
    }
    let appends = pending.iter().map(|(seq, message, _)| archive.append(Some(*seq), message.payload.to_vec()));
    let results = futures::future::join_all(appends).await;
    for ((seq, message, envelope), result) in pending.into_iter().zip(results) {
        match result {
            Ok(()) => {
                archived.insert(seq);
                if let Err(e) = message.ack().await {
                    tracing::warn!(seq, error = %e, "ack failed; the message will be redelivered and skipped");
                }
                deliver(envelope);
            }
            Err(e) => {
                // Not acknowledged: JetStream redelivers it after ack_wait.
                tracing::error!(seq, error = %e, "archiving failed; leaving the message unacknowledged");
            }
        }
    }
}
