//! Page views as the dataflow carries them.
//!
//! The dataflow keeps nothing of them: page views are sums and visitors are
//! sketches that only grow, so each row goes to the read model as it is,
//! which adds it to its bucket of every interval and lets a whole bucket go
//! when it leaves the window. (Keeping `distinct (bucket, visitor)` here,
//! with a retraction per event waiting for its expiry, held about 600 bytes
//! per page view; a row per interval tripled what the serving sink gathers
//! and sorts; bench/README.md.)

use serde::{Deserialize, Serialize};

use crate::Symbol;

/// One page view as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageviewRow {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub path: Symbol,
    /// A hash of the visitor's anonymous id.
    pub visitor: u64,
    pub dims: PageDims,
}

/// What page views can be filtered and broken down by, besides the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageDims {
    pub device: Symbol,
    pub browser: Symbol,
    pub os: Symbol,
    /// The referring site's domain; the empty name for none (or the site
    /// itself).
    pub referrer: Symbol,
    /// The app version; the empty name for none.
    pub release: Symbol,
}
