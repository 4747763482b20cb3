//! Connectors: the outside systems Sightline reads from and writes to.
//!
//! - [`archive`]: the durable record of every accepted batch on local disk.
//! - [`sourcemaps`]: uploaded source maps, stored and cached.
//! - [`bus`]: how an accepted batch travels from the ingest to the pipeline,
//!   embedded (archive, then an in-process hand-off) or over NATS JetStream.
//!
//! A connector never knows about dataflow: the bus hands decoded envelopes
//! to a [`bus::Deliver`] callback and that is all.

pub mod archive;
pub mod bus;
pub mod nats;
pub mod objects;
pub mod sourcemaps;
pub mod telemetry;

pub use archive::{Archive, ArchiveError, ArchivedBatch};
pub use bus::{Bus, BusError, Deliver, EmbeddedBus};
pub use nats::views::ViewFeed;
pub use nats::{NatsBus, NatsConfig, Partitions};
pub use objects::Objects;
pub use sourcemaps::{BatchMaps, SourceMapError, SourceMapStore};
