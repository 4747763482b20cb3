//! The bus: one interface, two implementations.

use std::sync::Arc;

use sightline_model::Envelope;

use crate::archive::{Archive, ArchiveError};
use crate::nats::NatsBus;

/// Receives each batch once it is durable; the pipeline's entrance.
pub type Deliver = Arc<dyn Fn(Envelope) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("NATS JetStream: {0}")]
    Nats(String),
}

/// Where the ingest puts accepted batches.
pub enum Bus {
    Embedded(EmbeddedBus),
    Nats(Box<NatsBus>),
}

impl Bus {
    /// Makes a batch durable. When this returns `Ok`, the batch may be
    /// acknowledged to the client: it survives a crash of this process.
    pub async fn publish(&self, envelope: Envelope) -> Result<(), BusError> {
        match self {
            Bus::Embedded(bus) => bus.publish(envelope).await,
            Bus::Nats(bus) => bus.publish(&envelope).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Bus::Embedded(_) => "embedded",
            Bus::Nats(_) => "nats",
        }
    }
}

/// The default bus: append to the archive (flushed), then hand to the pipeline.
pub struct EmbeddedBus {
    archive: Archive,
    deliver: Deliver,
}

impl EmbeddedBus {
    pub fn new(archive: Archive, deliver: Deliver) -> Self {
        EmbeddedBus { archive, deliver }
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BusError> {
        self.archive.append(None, envelope.encode()).await?;
        (self.deliver)(envelope);
        Ok(())
    }
}
