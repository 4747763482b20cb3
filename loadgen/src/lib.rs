//! Sightline's load generator: a seeded, realistic mix of web traffic
//! ([`workload`]), encoded for the ingest API, the JetStream stream or a
//! database's bulk loader ([`encode`]), and sent at a rate or as fast as the
//! server takes it ([`send`]). `sightline loadgen` is its command line; the
//! benchmarks in `bench/` drive it as a library.

pub mod encode;
pub mod send;
pub mod workload;

pub use encode::{Batch, BatchFormat, CSV_HEADER, batches, csv_project, write_csv};
pub use send::{Pace, SendReport, ServerProject, Target, create_projects, send};
pub use workload::{GeneratedEvent, Generator, USER_AGENTS, Workload};
