//! What ingest does to an error event: frames parsed from the raw stack
//! (unless the client sent frames), `in_app` decided, and the group chosen.

use sightline_model::{Event, EventKind, Frame, GroupRef};

use crate::grouping::{self, GroupingInput};
use crate::stack::{StackFrame, is_in_app, parse_stack};

/// Fills in an error event's frames and group; other events are untouched.
pub fn process_error(event: &mut Event) {
    let EventKind::Error { error_type, message, stack, frames, fingerprint, group } = &mut event.kind else {
        return;
    };
    let parsed: Vec<StackFrame> = if frames.is_empty() {
        stack.as_deref().map(parse_stack).unwrap_or_default()
    } else {
        frames
            .iter()
            .map(|f| StackFrame {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                column: f.column,
                in_app: f.file.as_deref().is_some_and(is_in_app),
            })
            .collect()
    };
    let decided = grouping::group(&GroupingInput {
        error_type: error_type.as_deref(),
        message: message.as_deref(),
        frames: &parsed,
        fingerprint: fingerprint.as_deref(),
    });
    *frames = parsed
        .into_iter()
        .map(|f| Frame { function: f.function, file: f.file, line: f.line, column: f.column, in_app: f.in_app })
        .collect();
    let basis =
        serde_json::to_value(decided.basis).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    *group = Some(GroupRef { fingerprint: decided.fingerprint, version: decided.version, basis });
}
