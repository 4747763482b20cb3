//! Error events repeat: one bug throws the same stack, from the same
//! release, thousands of times. [`RecentStacks`] remembers the group that
//! [`process_error`] decided for recent raw stacks, bounded by bytes, so a
//! repeat costs a lookup instead of parsing, source-map resolution and
//! grouping again.
//!
//! Frames parsed from a raw stack are derived data: the event keeps its
//! stack and its group, and [`crate::resolve_frames`] makes the frames again
//! when an event is shown (with the maps of that moment). Only frames a
//! client sent instead of a stack are kept with the event. Carrying parsed
//! frames doubled what an error event cost the server (archive bytes,
//! encoding, copies; bench/README.md).
//!
//! The key is everything the group depends on: project, release, error
//! type, custom fingerprint, raw stack, and the source maps' generation (an
//! upload changes how frames resolve, so entries made before it are never
//! hit again and age out). Events grouped by message (no usable frame) and
//! events that sent frames instead of a stack are processed every time.

use std::fmt::Write;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use sightline_model::{Event, EventKind, GroupRef};

use crate::grouping::GroupingBasis;
use crate::process::process_error;
use crate::symbolicate::MapLookup;

/// Groups of recent error stacks.
pub struct RecentStacks {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    entries: LruCache<String, Remembered>,
    bytes: usize,
}

struct Remembered {
    group: GroupRef,
    bytes: usize,
}

/// Most entries, whatever their size.
const MAX_ENTRIES: usize = 65_536;

impl RecentStacks {
    /// A cache holding at most `max_bytes` of keys and groups.
    pub fn new(max_bytes: usize) -> RecentStacks {
        RecentStacks {
            inner: Mutex::new(Inner {
                entries: LruCache::new(NonZeroUsize::new(MAX_ENTRIES).expect("non-zero")),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    /// Decides an error event's group, from the cache when this stack was
    /// seen with the same maps (`maps_generation` changes whenever a map is
    /// uploaded). Frames parsed from the stack are not kept; frames the
    /// client sent are, resolved.
    pub fn group_error(&self, event: &mut Event, maps: MapLookup<'_>, maps_generation: u64) {
        let Some(key) = cache_key(event, maps_generation) else {
            return process_error(event, maps);
        };
        if let Some(hit) = self.lock().entries.get(&key)
            && let EventKind::Error { group, .. } = &mut event.kind
        {
            *group = Some(hit.group.clone());
            return;
        }
        process_error(event, maps);
        let EventKind::Error { frames, group: Some(group), .. } = &mut event.kind else {
            return;
        };
        *frames = Vec::new();
        if group.basis == GroupingBasis::Message.as_str() {
            return;
        }
        let bytes = key.len() + group.fingerprint.len() + group.basis.len() + 96;
        let remembered = Remembered { group: group.clone(), bytes };
        let mut inner = self.lock();
        inner.bytes += bytes;
        if let Some((_, evicted)) = inner.entries.push(key, remembered) {
            inner.bytes -= evicted.bytes;
        }
        while inner.bytes > self.max_bytes {
            let Some((_, evicted)) = inner.entries.pop_lru() else { break };
            inner.bytes -= evicted.bytes;
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The key of an error event with a raw stack and no client frames.
fn cache_key(event: &Event, maps_generation: u64) -> Option<String> {
    let EventKind::Error { error_type, stack: Some(stack), frames, fingerprint, .. } = &event.kind else {
        return None;
    };
    if !frames.is_empty() {
        return None;
    }
    let custom = fingerprint.as_deref().unwrap_or_default();
    let mut parts = vec![event.project_id.as_str(), event.release.as_deref().unwrap_or("")];
    parts.push(error_type.as_deref().unwrap_or(""));
    parts.push(if fingerprint.is_some() { "custom" } else { "default" });
    parts.extend(custom.iter().map(String::as_str));
    parts.push(stack);
    // Each part is prefixed with its length, so two different inputs never
    // make one key, whatever bytes the parts hold.
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 8).sum::<usize>() + 24);
    let _ = write!(key, "{maps_generation}");
    for part in parts {
        let _ = write!(key, ";{}:", part.len());
        key.push_str(part);
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sightline_model::DeviceClass;
    use sourcemap::{SourceMap, SourceMapBuilder};

    use sightline_model::Frame;

    use super::*;

    const BUNDLE: &str = "https://shop.example/static/app.min.js";

    fn error(release: &str, error_type: &str, stack: &str) -> Event {
        Event {
            id: uuid::Uuid::nil(),
            project_id: "p".into(),
            received_at: 0,
            ts: 0,
            client_ts: None,
            anonymous_id: "v".into(),
            session_id: None,
            url: None,
            path: String::new(),
            release: Some(release.into()),
            device: DeviceClass::Desktop,
            browser: String::new(),
            os: String::new(),
            kind: EventKind::Error {
                error_type: Some(error_type.into()),
                message: Some("boom".into()),
                stack: Some(stack.into()),
                frames: Vec::new(),
                fingerprint: None,
                group: None,
            },
        }
    }

    fn stack(column: u32) -> String {
        format!("TypeError: boom\n    at b ({BUNDLE}:1:{column})\n    at a ({BUNDLE}:1:14)")
    }

    fn map() -> Arc<SourceMap> {
        let mut b = SourceMapBuilder::new(Some("app.min.js"));
        b.add(0, 13, 1, 2, Some("src/app.js"), Some("inner"), false);
        b.add(0, 30, 4, 2, Some("src/app.js"), None, false);
        Arc::new(b.into_sourcemap())
    }

    fn frames_and_group(event: &Event) -> (Vec<Frame>, GroupRef) {
        let EventKind::Error { frames, group, .. } = &event.kind else { unreachable!() };
        (frames.clone(), group.clone().unwrap())
    }

    #[test]
    fn a_repeat_gets_the_same_group_from_the_cache_and_no_frames_are_carried() {
        let cache = RecentStacks::new(1 << 20);
        let no_maps = |_: &str| None;
        for release in ["1.0", "1.0", "2.0"] {
            let mut cached = error(release, "TypeError", &stack(31));
            cache.group_error(&mut cached, &no_maps, 0);
            let mut direct = error(release, "TypeError", &stack(31));
            process_error(&mut direct, &no_maps);
            let ((frames, group), (direct_frames, direct_group)) =
                (frames_and_group(&cached), frames_and_group(&direct));
            assert_eq!(group, direct_group);
            assert!(frames.is_empty() && direct_frames.is_empty(), "parsed frames are derived, not kept");
        }
        assert_eq!(cache.len(), 2, "one entry per release");
        // A hit does not look at the maps at all.
        let lookups = std::cell::Cell::new(0);
        let counting = |_: &str| {
            lookups.set(lookups.get() + 1);
            None
        };
        cache.group_error(&mut error("1.0", "TypeError", &stack(31)), &counting, 0);
        assert_eq!(lookups.get(), 0);
        cache.group_error(&mut error("3.0", "TypeError", &stack(31)), &counting, 0);
        assert_eq!(lookups.get(), 1, "a miss looks the bundle up once");
        let mut other_type = error("1.0", "RangeError", &stack(31));
        cache.group_error(&mut other_type, &no_maps, 0);
        assert_eq!(cache.len(), 4);
        let mut type_error = error("1.0", "TypeError", &stack(31));
        process_error(&mut type_error, &no_maps);
        assert_ne!(frames_and_group(&other_type).1, frames_and_group(&type_error).1);
    }

    #[test]
    fn an_upload_makes_earlier_groups_stale() {
        let cache = RecentStacks::new(1 << 20);
        let mut before = error("1.0", "TypeError", &stack(31));
        cache.group_error(&mut before, &|_| None, 0);
        // A map was uploaded: the generation moved on, frames now resolve
        // to other functions, so the group is another one.
        let map = map();
        let maps = |url: &str| (url == BUNDLE).then(|| map.clone());
        let mut after = error("1.0", "TypeError", &stack(31));
        cache.group_error(&mut after, &maps, 1);
        let mut direct = error("1.0", "TypeError", &stack(31));
        process_error(&mut direct, &maps);
        assert_eq!(frames_and_group(&after).1, frames_and_group(&direct).1);
        assert_ne!(frames_and_group(&before).1.fingerprint, frames_and_group(&after).1.fingerprint);
    }

    #[test]
    fn memory_stays_within_its_bound() {
        let cache = RecentStacks::new(64 * 1024);
        for column in 0..2_000 {
            cache.group_error(&mut error("1.0", "TypeError", &stack(column)), &|_| None, 0);
        }
        let inner = cache.lock();
        assert!(inner.bytes <= 64 * 1024, "{} bytes held", inner.bytes);
        assert!(inner.entries.len() > 10 && inner.entries.len() < 2_000);
        let counted: usize = inner.entries.iter().map(|(_, r)| r.bytes).sum();
        assert_eq!(counted, inner.bytes);
    }

    #[test]
    fn message_grouped_events_are_not_kept_and_client_frames_are() {
        let cache = RecentStacks::new(1 << 20);
        cache.group_error(&mut error("1.0", "TypeError", "TypeError: no frames here"), &|_| None, 0);
        assert!(cache.is_empty());
        let mut framed = error("1.0", "TypeError", &stack(31));
        if let EventKind::Error { frames, .. } = &mut framed.kind {
            frames.push(Frame {
                function: Some("f".into()),
                file: Some(BUNDLE.into()),
                line: Some(1),
                column: Some(1),
                in_app: false,
                minified: None,
            });
        }
        cache.group_error(&mut framed, &|_| None, 0);
        assert!(cache.is_empty());
        let (frames, _) = frames_and_group(&framed);
        assert!(frames.len() == 1 && frames[0].in_app, "the client's frames stay, processed");
    }
}
