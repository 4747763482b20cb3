//! What ingest does to an error event: frames parsed from the raw stack
//! (unless the client sent frames), `in_app` decided, and the group chosen.

use sightline_model::{Event, EventKind, Frame, GroupRef};

use crate::grouping::{self, GroupingInput};
use crate::stack::{is_in_app, parse_stack};
use crate::symbolicate::{MapLookup, symbolicate};

/// Fills in an error event's frames and group; other events are untouched.
/// `maps` finds the uploaded source map of a minified file in the event's
/// release; frames are resolved through it before grouping.
pub fn process_error(event: &mut Event, maps: MapLookup<'_>) {
    let EventKind::Error { error_type, message, stack, frames, fingerprint, group } = &mut event.kind else {
        return;
    };
    resolve_frames(stack.as_deref(), frames, maps);
    let decided = grouping::group(&GroupingInput {
        error_type: error_type.as_deref(),
        message: message.as_deref(),
        frames: frames.as_slice(),
        fingerprint: fingerprint.as_deref(),
    });
    let basis = decided.basis.as_str().to_owned();
    *group = Some(GroupRef { fingerprint: decided.fingerprint, version: decided.version, basis });
}

/// An error's frames, innermost first, resolved through `maps`: parsed from
/// `stack` when `frames` is empty (the client sent none), else the client's
/// frames with `in_app` decided.
pub fn resolve_frames(stack: Option<&str>, frames: &mut Vec<Frame>, maps: MapLookup<'_>) {
    if frames.is_empty() {
        *frames = stack
            .map(parse_stack)
            .unwrap_or_default()
            .into_iter()
            .map(|f| Frame {
                function: f.function,
                file: f.file,
                line: f.line,
                column: f.column,
                in_app: f.in_app,
                minified: None,
            })
            .collect();
    } else {
        for f in frames.iter_mut() {
            f.in_app = f.file.as_deref().is_some_and(is_in_app);
        }
    }
    symbolicate(frames, maps);
}
