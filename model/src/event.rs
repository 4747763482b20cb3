//! The v1 event types: what a client sends and what the pipeline sees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A property value of a custom event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Num(f64),
    Str(String),
}

/// One stack frame: sent pre-parsed by a client, or parsed from `stack` at
/// ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Frame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Whether the frame is the application's own code (set at ingest).
    #[serde(default)]
    pub in_app: bool,
    /// Where the frame was in the minified file, when a source map turned it
    /// into the original location above.
    #[serde(default)]
    pub minified: Option<MinifiedLocation>,
}

/// The original source lines around a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceContext {
    pub pre_context: Vec<String>,
    pub context_line: String,
    pub post_context: Vec<String>,
}

/// A frame's location in the built (minified) file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MinifiedLocation {
    pub function: Option<String>,
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// The issue an error event belongs to, decided at ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupRef {
    /// 32 hex characters, the same for every event of the issue.
    pub fingerprint: String,
    /// The grouping algorithm that decided it (`v1`).
    pub version: String,
    /// `custom`, `in_app_frames`, `all_frames` or `message`.
    pub basis: String,
}

/// The web vitals Sightline understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VitalName {
    Lcp,
    Inp,
    Cls,
    Fcp,
    Ttfb,
    Fid,
}

impl VitalName {
    pub const ALL: [VitalName; 6] =
        [VitalName::Lcp, VitalName::Inp, VitalName::Cls, VitalName::Fcp, VitalName::Ttfb, VitalName::Fid];

    pub fn as_str(self) -> &'static str {
        match self {
            VitalName::Lcp => "LCP",
            VitalName::Inp => "INP",
            VitalName::Cls => "CLS",
            VitalName::Fcp => "FCP",
            VitalName::Ttfb => "TTFB",
            VitalName::Fid => "FID",
        }
    }

    pub fn parse(s: &str) -> Option<VitalName> {
        VitalName::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What kind of event it is, with the fields only that kind has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    Pageview {
        referrer: Option<String>,
        title: Option<String>,
    },
    Event {
        name: String,
        props: BTreeMap<String, PropValue>,
    },
    Error {
        error_type: Option<String>,
        message: Option<String>,
        stack: Option<String>,
        /// Innermost first.
        frames: Vec<Frame>,
        /// The client's explicit fingerprint, if any.
        fingerprint: Option<Vec<String>>,
        /// Set at ingest by the error processing.
        group: Option<GroupRef>,
    },
    Vital {
        name: VitalName,
        value: f64,
    },
}

impl EventKind {
    /// The contract's `type` names, by [`EventKind::type_index`].
    pub const TYPE_NAMES: [&'static str; 4] = ["pageview", "event", "error", "vital"];

    /// The contract's `type` name.
    pub fn type_name(&self) -> &'static str {
        EventKind::TYPE_NAMES[self.type_index()]
    }

    /// The index of the kind's name in [`EventKind::TYPE_NAMES`], for
    /// counting events by kind.
    pub fn type_index(&self) -> usize {
        match self {
            EventKind::Pageview { .. } => 0,
            EventKind::Event { .. } => 1,
            EventKind::Error { .. } => 2,
            EventKind::Vital { .. } => 3,
        }
    }
}

/// An event as the client sent it, after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEvent {
    pub ts: Option<i64>,
    pub anonymous_id: String,
    pub session_id: Option<String>,
    pub url: Option<String>,
    /// The path of `url` ([`crate::enrich::path_of`]), found while checking
    /// it; empty without a url.
    pub path: String,
    pub release: Option<String>,
    pub kind: EventKind,
}

/// The device class derived from the `User-Agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceClass {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Unknown,
}

impl DeviceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Desktop => "desktop",
            DeviceClass::Mobile => "mobile",
            DeviceClass::Tablet => "tablet",
            DeviceClass::Bot => "bot",
            DeviceClass::Unknown => "unknown",
        }
    }
}

/// An accepted, enriched event: what the bus carries and the pipeline reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique, time-ordered id given at ingest.
    pub id: Uuid,
    pub project_id: String,
    /// Server receive time, ms since the epoch.
    pub received_at: i64,
    /// Event time, ms since the epoch: the client's clock, or the server's
    /// when the client sent none or ran more than a day ahead.
    pub ts: i64,
    /// The client's own `ts` as sent, kept for debugging clock skew.
    pub client_ts: Option<i64>,
    pub anonymous_id: String,
    pub session_id: Option<String>,
    pub url: Option<String>,
    /// The URL's path, `""` when the event has no URL.
    pub path: String,
    pub release: Option<String>,
    pub device: DeviceClass,
    pub browser: String,
    pub os: String,
    pub kind: EventKind,
}
