//! What ingest does to an error event: its group decided from its frames
//! (parsed from the raw stack unless the client sent frames), resolved
//! through the release's source maps.

use sightline_model::{Event, EventKind, Frame, GroupRef};

use crate::grouping::{self, Grouping, GroupingInput};
use crate::stack::parse_stack;
use crate::symbolicate::{FrameRef, MapLookup, StackMaps, resolve};

/// Decides an error event's group; other events are untouched. `maps`
/// finds the uploaded source map of a minified file in the event's release;
/// frames are resolved through it before grouping.
///
/// Frames parsed from the raw stack are not kept (they are derived data:
/// [`resolve_frames`] makes them again when an event is shown); frames the
/// client sent are kept, resolved, with `in_app` decided.
pub fn process_error(event: &mut Event, maps: MapLookup<'_>) {
    if let Some(decided) = decide_group(event, maps)
        && let EventKind::Error { group, .. } = &mut event.kind
    {
        *group = Some(group_ref(decided));
    }
}

/// The group [`process_error`] gives an error event (`None` for other
/// events); the client's frames are resolved in place.
pub(crate) fn decide_group(event: &mut Event, maps: MapLookup<'_>) -> Option<Grouping> {
    let EventKind::Error { error_type, message, stack, frames, fingerprint, .. } = &mut event.kind else {
        return None;
    };
    let decide = |frames: &[FrameRef]| {
        grouping::group(&GroupingInput {
            error_type: error_type.as_deref(),
            message: message.as_deref(),
            frames,
            fingerprint: fingerprint.as_deref(),
        })
    };
    Some(if frames.is_empty() {
        let parsed: Vec<FrameRef> =
            stack.as_deref().map(parse_stack).unwrap_or_default().iter().map(FrameRef::from_stack).collect();
        let stack_maps = StackMaps::load(&parsed, maps);
        decide(&resolve(parsed, &stack_maps))
    } else {
        resolve_frames(None, frames, maps);
        let refs: Vec<FrameRef> =
            frames.iter().map(|f| FrameRef { in_app: f.in_app, ..FrameRef::from_client(f) }).collect();
        decide(&refs)
    })
}

/// What an event records of its group.
pub(crate) fn group_ref(decided: Grouping) -> GroupRef {
    GroupRef { fingerprint: decided.fingerprint, version: decided.version, basis: decided.basis.as_str().to_owned() }
}

/// An error's frames, innermost first, resolved through `maps`: parsed from
/// `stack` when `frames` is empty (the client sent none), else the client's
/// frames with `in_app` decided.
pub fn resolve_frames(stack: Option<&str>, frames: &mut Vec<Frame>, maps: MapLookup<'_>) {
    let parsed;
    let refs: Vec<FrameRef> = if frames.is_empty() {
        parsed = stack.map(parse_stack).unwrap_or_default();
        parsed.iter().map(FrameRef::from_stack).collect()
    } else {
        frames.iter().map(FrameRef::from_client).collect()
    };
    let stack_maps = StackMaps::load(&refs, maps);
    let resolved: Vec<Frame> = resolve(refs, &stack_maps).iter().map(FrameRef::to_frame).collect();
    *frames = resolved;
}
