//! Grouping: which errors are the same issue.
//!
//! Each shipped algorithm lives in its own module and is never edited once
//! shipped; every group records the version that made it, so a new version
//! can be introduced without silently regrouping old issues.

pub mod v1;

use serde::{Deserialize, Serialize};

use sightline_model::Frame;

use crate::stack::StackFrame;
use crate::symbolicate::FrameRef;

/// The version new events are grouped with.
pub const CURRENT: &str = v1::VERSION;

/// What grouping reads of a frame: parsed frames and the model's frames
/// both qualify, so neither is copied into the other to be grouped.
pub trait GroupFrame {
    fn function(&self) -> Option<&str>;
    fn file(&self) -> Option<&str>;
    fn in_app(&self) -> bool;
    /// [`v1::module_name`] of the file, when it was derived in advance (an
    /// [`crate::IndexedMap`] names each of its sources once); `None`: derive it.
    fn known_module(&self) -> Option<&str> {
        None
    }
    /// [`v1::function_name`] of the function, when it was derived in
    /// advance (an [`crate::IndexedMap`] names each of its names once);
    /// `None`: derive it.
    fn known_function(&self) -> Option<Option<&str>> {
        None
    }
}

impl GroupFrame for StackFrame<'_> {
    fn function(&self) -> Option<&str> {
        self.function
    }
    fn file(&self) -> Option<&str> {
        self.file
    }
    fn in_app(&self) -> bool {
        self.in_app
    }
}

impl GroupFrame for Frame {
    fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }
    fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
    fn in_app(&self) -> bool {
        self.in_app
    }
}

impl GroupFrame for FrameRef<'_> {
    fn function(&self) -> Option<&str> {
        self.function
    }
    fn file(&self) -> Option<&str> {
        self.file
    }
    fn in_app(&self) -> bool {
        self.in_app
    }
    fn known_module(&self) -> Option<&str> {
        self.grouping_module
    }
    fn known_function(&self) -> Option<Option<&str>> {
        self.grouping_function
    }
}

impl<T: GroupFrame> GroupFrame for &T {
    fn function(&self) -> Option<&str> {
        (**self).function()
    }
    fn file(&self) -> Option<&str> {
        (**self).file()
    }
    fn in_app(&self) -> bool {
        (**self).in_app()
    }
    fn known_module(&self) -> Option<&str> {
        (**self).known_module()
    }
    fn known_function(&self) -> Option<Option<&str>> {
        (**self).known_function()
    }
}

/// What grouping looks at.
#[derive(Debug, Clone, Copy)]
pub struct GroupingInput<'a, F> {
    pub error_type: Option<&'a str>,
    pub message: Option<&'a str>,
    /// Innermost frame first, with `in_app` decided.
    pub frames: &'a [F],
    /// A fingerprint the client set explicitly.
    pub fingerprint: Option<&'a [String]>,
}

/// Which rule decided a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupingBasis {
    /// The client's own `fingerprint`.
    Custom,
    /// Exception type and the in-app frames.
    InAppFrames,
    /// Exception type and all frames (no frame was in-app).
    AllFrames,
    /// Exception type and the normalized message (no usable stack).
    Message,
}

impl GroupingBasis {
    /// The name recorded on events and groups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupingBasis::Custom => "custom",
            GroupingBasis::InAppFrames => "in_app_frames",
            GroupingBasis::AllFrames => "all_frames",
            GroupingBasis::Message => "message",
        }
    }
}

/// A group decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    /// 32 hex characters; the same for every event of one issue.
    pub fingerprint: String,
    /// The algorithm version, e.g. `v1`.
    pub version: String,
    pub basis: GroupingBasis,
}

/// Groups with the current version.
pub fn group<F: GroupFrame>(input: &GroupingInput<'_, F>) -> Grouping {
    v1::group(input)
}
