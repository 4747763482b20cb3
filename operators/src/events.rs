//! Custom events, as the dataflow sees them. Their rows go to the read
//! model as they are: it counts each in its bucket of every interval, per
//! name and every dimension a query may filter or break down by (path,
//! device, browser, release, the set of properties), so no filter needs a
//! dataflow of its own.

use serde::{Deserialize, Serialize};

use crate::Symbol;

/// One custom event as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventRow {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub name: Symbol,
    pub dims: EventDims,
}

/// What a custom event can be filtered and broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventDims {
    pub path: Symbol,
    pub device: Symbol,
    pub browser: Symbol,
    pub release: Symbol,
    /// The event's whole property set, interned (the read model knows its
    /// key/value pairs).
    pub props: Symbol,
}
