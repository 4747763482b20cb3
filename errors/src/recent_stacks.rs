//! Error events repeat: one bug throws the same stack, from the same
//! release, thousands of times. [`RecentStacks`] keeps what
//! [`process_error`] made of recent raw stacks (resolved frames and group),
//! bounded by bytes, so a repeat costs a lookup and a copy instead of
//! parsing, source-map resolution and grouping again.
//!
//! The key is everything the result depends on: project, release, error
//! type, custom fingerprint, raw stack, and the source maps' generation (an
//! upload changes how frames resolve, so entries made before it are never
//! hit again and age out). Events grouped by message (no usable frame) and
//! events that sent frames instead of a stack are processed every time.
//!
//! A result is kept from a stack's second sighting on: the first only
//! leaves a hash behind, so a stream of stacks that never repeat does not
//! pay for copying every result into the cache.

use std::fmt::Write;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use sightline_model::{Event, EventKind, Frame, GroupRef};

use crate::grouping::GroupingBasis;
use crate::process::process_error;
use crate::symbolicate::MapLookup;

/// Processed stacks of recent error events.
pub struct RecentStacks {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    entries: LruCache<String, Processed>,
    bytes: usize,
    /// Hashes of keys seen once and not kept yet.
    seen_once: LruCache<u64, ()>,
    hasher: lru::DefaultHasher,
}

struct Processed {
    frames: Vec<Frame>,
    group: GroupRef,
    bytes: usize,
}

/// Most entries, whatever their size.
const MAX_ENTRIES: usize = 16_384;
/// Most keys remembered as seen once.
const MAX_SEEN_ONCE: usize = 65_536;

impl RecentStacks {
    /// A cache holding at most `max_bytes` of keys and frames.
    pub fn new(max_bytes: usize) -> RecentStacks {
        RecentStacks {
            inner: Mutex::new(Inner {
                entries: LruCache::new(NonZeroUsize::new(MAX_ENTRIES).expect("non-zero")),
                bytes: 0,
                seen_once: LruCache::new(NonZeroUsize::new(MAX_SEEN_ONCE).expect("non-zero")),
                hasher: lru::DefaultHasher::default(),
            }),
            max_bytes,
        }
    }

    /// [`process_error`], answered from the cache when this stack was seen
    /// with the same maps. `maps_generation` changes whenever a map is
    /// uploaded.
    pub fn process(&self, event: &mut Event, maps: MapLookup<'_>, maps_generation: u64) {
        let Some(key) = cache_key(event, maps_generation) else {
            return process_error(event, maps);
        };
        if let Some(hit) = self.lock().entries.get(&key)
            && let EventKind::Error { frames, group, .. } = &mut event.kind
        {
            *frames = hit.frames.clone();
            *group = Some(hit.group.clone());
            return;
        }
        process_error(event, maps);
        let EventKind::Error { frames, group: Some(group), .. } = &event.kind else {
            return;
        };
        if group.basis == GroupingBasis::Message.as_str() {
            return;
        }
        let bytes = key.len() + frames.iter().map(frame_bytes).sum::<usize>() + 64;
        if bytes > self.max_bytes / 16 {
            return;
        }
        let mut inner = self.lock();
        let hash = inner.hasher.hash_one(&key);
        if inner.seen_once.pop(&hash).is_none() {
            inner.seen_once.put(hash, ());
            return;
        }
        inner.bytes += bytes;
        let processed = Processed { frames: frames.clone(), group: group.clone(), bytes };
        if let Some((_, evicted)) = inner.entries.push(key, processed) {
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

fn frame_bytes(frame: &Frame) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let minified = frame.minified.as_ref().map_or(0, |m| m.file.len() + text(&m.function) + 48);
    text(&frame.function) + text(&frame.file) + minified + 80
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sightline_model::DeviceClass;
    use sourcemap::{SourceMap, SourceMapBuilder};

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

    fn processed(event: &Event) -> (Vec<Frame>, GroupRef) {
        let EventKind::Error { frames, group, .. } = &event.kind else { unreachable!() };
        (frames.clone(), group.clone().unwrap())
    }

    #[test]
    fn a_repeat_is_answered_from_the_cache_with_the_same_result() {
        let cache = RecentStacks::new(1 << 20);
        let no_maps = |_: &str| None;
        for release in ["1.0", "1.0", "2.0", "2.0"] {
            let mut cached = error(release, "TypeError", &stack(31));
            cache.process(&mut cached, &no_maps, 0);
            let mut direct = error(release, "TypeError", &stack(31));
            process_error(&mut direct, &no_maps);
            assert_eq!(processed(&cached), processed(&direct));
        }
        assert_eq!(cache.len(), 2, "one entry per release");
        // A hit does not look at the maps at all.
        let lookups = std::cell::Cell::new(0);
        let counting = |_: &str| {
            lookups.set(lookups.get() + 1);
            None
        };
        cache.process(&mut error("1.0", "TypeError", &stack(31)), &counting, 0);
        assert_eq!(lookups.get(), 0);
        cache.process(&mut error("3.0", "TypeError", &stack(31)), &counting, 0);
        assert_eq!(lookups.get(), 1, "a miss looks the bundle up once");
        assert_eq!(cache.len(), 2, "a stack seen once is not kept");
        cache.process(&mut error("3.0", "TypeError", &stack(31)), &counting, 0);
        assert_eq!(cache.len(), 3, "the second sighting is");
        let mut other_type = error("1.0", "RangeError", &stack(31));
        cache.process(&mut error("1.0", "RangeError", &stack(31)), &no_maps, 0);
        cache.process(&mut other_type, &no_maps, 0);
        assert_eq!(cache.len(), 4);
        assert_ne!(processed(&other_type).1, processed(&error_processed("1.0", "TypeError")).1);
    }

    fn error_processed(release: &str, error_type: &str) -> Event {
        let mut event = error(release, error_type, &stack(31));
        process_error(&mut event, &|_| None);
        event
    }

    #[test]
    fn an_upload_makes_earlier_results_stale() {
        let cache = RecentStacks::new(1 << 20);
        let mut before = error("1.0", "TypeError", &stack(31));
        cache.process(&mut error("1.0", "TypeError", &stack(31)), &|_| None, 0);
        cache.process(&mut before, &|_| None, 0);
        assert_eq!((cache.len(), processed(&before).0[0].file.as_deref()), (1, Some(BUNDLE)));
        // A map was uploaded: the generation moved on, frames now resolve.
        let map = map();
        let maps = |url: &str| (url == BUNDLE).then(|| map.clone());
        let mut after = error("1.0", "TypeError", &stack(31));
        cache.process(&mut after, &maps, 1);
        assert_eq!(processed(&after).0[0].file.as_deref(), Some("src/app.js"));
        assert_ne!(processed(&before).1.fingerprint, processed(&after).1.fingerprint);
    }

    #[test]
    fn memory_stays_within_its_bound() {
        let cache = RecentStacks::new(64 * 1024);
        for column in 0..2_000 {
            for _ in 0..2 {
                cache.process(&mut error("1.0", "TypeError", &stack(column)), &|_| None, 0);
            }
        }
        let inner = cache.lock();
        assert!(inner.bytes <= 64 * 1024, "{} bytes held", inner.bytes);
        assert!(inner.entries.len() > 10 && inner.entries.len() < 2_000);
        let counted: usize = inner.entries.iter().map(|(_, p)| p.bytes).sum();
        assert_eq!(counted, inner.bytes);
    }

    #[test]
    fn message_grouped_and_client_framed_events_are_not_kept() {
        let cache = RecentStacks::new(1 << 20);
        cache.process(&mut error("1.0", "TypeError", "TypeError: no frames here"), &|_| None, 0);
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
        cache.process(&mut framed, &|_| None, 0);
        assert!(cache.is_empty());
        assert!(processed(&framed).0[0].in_app, "still processed");
    }
}
