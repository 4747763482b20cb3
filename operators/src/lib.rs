//! Pure dataflow operators: each takes collections and returns collections,
//! touches no I/O, and is tested against a plain batch reference.
//!
//! Times are ingestion ticks in ms since the epoch ([`Time`]); event time
//! lives in the data, as buckets.

pub mod alerts;
pub mod anomalies;
pub mod buckets;
pub mod errors;
pub mod events;
pub mod pageviews;
pub mod retention;
pub mod sessions;
#[cfg(test)]
mod testing;
pub mod vitals;

pub use alerts::{MAX_WINDOW_S, RuleSample, RuleSpec, Signal, SignalRow, Watch, new_group_signal, rule_windows};
pub use anomalies::{AnomalyPoint, Series, anomaly_scores};
pub use buckets::Interval;
pub use errors::{ErrorCell, ErrorRow, ErrorUpdate, error_group_views};
pub use events::{EventDims, EventRow};
pub use pageviews::{PageDims, PageviewRow};
pub use retention::expire_at;
pub use sessions::{Session, SessionHit, SessionRow, session_views};
pub use vitals::{Rating, VitalRow, VitalUpdate, vital_views};

/// A timely time: the ingestion tick, ms since the Unix epoch.
pub type Time = u64;

/// An interned string (a project id, a path): small, `Copy`, cheap to sort.
pub type Symbol = u32;
