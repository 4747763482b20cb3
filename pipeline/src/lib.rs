//! The pipeline: timely workers inside the process, fed with accepted
//! batches, maintaining the views and applying their consolidated updates,
//! tick by tick, to the [`ViewStore`] that the query API reads.
//!
//! - [`runtime`]: starts the workers, hands batches to them, knows how far
//!   the views have caught up.
//! - [`dataflow`]: the graph, from input rows through the operators to the
//!   frontier-gated sink.
//! - [`views`]: the read model and its queries, and the change feed.
//! - [`replica`]: a cluster's view feed, from process 0 to the API nodes.

pub mod dataflow;
pub mod interner;
pub mod replica;
pub mod rows;
pub mod runtime;
pub mod views;

pub use replica::{FeedWriter, Replica};
pub use runtime::{ClusterConfig, Pipeline, PipelineConfig};
pub use views::{
    ErrorGroupDetail, ErrorRatePoint, ErrorsAnswer, ErrorsQuery, PageviewsAnswer, PageviewsPoint, PageviewsQuery,
    PageviewsTotal, ViewChange, ViewStore,
};

/// Wall-clock ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
