//! Error events repeat: one bug throws the same stack, from the same
//! release, thousands of times. [`RecentStacks`] remembers the group that
//! [`process_error`] decided for recent raw stacks, bounded in memory, so a
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
//! hit again and age out), hashed to 128 bits (XXH3 with a seed drawn at
//! start, so nobody outside can aim at a collision): a miss, the common
//! case in a stream of new stacks, costs one pass over the stack instead
//! of copying it into a key, and an entry is a few dozen bytes. Events grouped by message (no usable frame) and
//! events that sent frames instead of a stack are processed every time.

use std::hash::BuildHasher;
use std::sync::Mutex;

use sightline_model::{Event, EventKind, GroupRef};
use xxhash_rust::xxh3::Xxh3;

use crate::grouping::GroupingBasis;
use crate::process::process_error;
use crate::symbolicate::MapLookup;

/// Groups of recent error stacks: a set-associative cache. A key picks one
/// set of [`WAYS`] slots, each set behind its own lock and kept in
/// least-recently-used order, so a lookup or an insert touches a few
/// dozen bytes and never allocates for the cache itself.
pub struct RecentStacks {
    sets: Box<[Mutex<Set>]>,
    seed: u64,
}

/// Slots per set.
const WAYS: usize = 4;

/// Most recently used first.
#[derive(Default)]
struct Set {
    slots: [Option<(u128, GroupRef)>; WAYS],
}

/// What one slot holds at most: the key, the group and its strings (a
/// 32-character fingerprint, the version and the basis name).
const SLOT_BYTES: usize = size_of::<Option<(u128, GroupRef)>>() + 96;

impl RecentStacks {
    /// A cache of at most `max_bytes` (and at least one set).
    pub fn new(max_bytes: usize) -> RecentStacks {
        let sets = (max_bytes / (SLOT_BYTES * WAYS)).max(1);
        // A power of two, so a key's low bits pick its set.
        let sets = if sets.is_power_of_two() { sets } else { sets.next_power_of_two() / 2 };
        RecentStacks {
            sets: (0..sets).map(|_| Mutex::default()).collect(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
        }
    }

    /// Decides an error event's group, from the cache when this stack was
    /// seen with the same maps (`maps_generation` changes whenever a map is
    /// uploaded). Frames parsed from the stack are not kept; frames the
    /// client sent are, resolved.
    pub fn group_error(&self, event: &mut Event, maps: MapLookup<'_>, maps_generation: u64) {
        let Some(key) = cache_key(event, maps_generation, self.seed) else {
            return process_error(event, maps);
        };
        if let Some(hit) = self.set_of(key).get(key)
            && let EventKind::Error { group, .. } = &mut event.kind
        {
            *group = Some(hit);
            return;
        }
        process_error(event, maps);
        let EventKind::Error { frames, group: Some(group), .. } = &mut event.kind else {
            return;
        };
        *frames = Vec::new();
        if group.basis != GroupingBasis::Message.as_str() {
            self.set_of(key).put(key, group.clone());
        }
    }

    /// Entries held (for tests).
    pub fn len(&self) -> usize {
        self.sets.iter().map(|set| lock(set).slots.iter().flatten().count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most entries held at once.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    fn set_of(&self, key: u128) -> std::sync::MutexGuard<'_, Set> {
        lock(&self.sets[key as usize & (self.sets.len() - 1)])
    }
}

fn lock(set: &Mutex<Set>) -> std::sync::MutexGuard<'_, Set> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

impl Set {
    /// The group of `key`, which becomes the most recently used.
    fn get(&mut self, key: u128) -> Option<GroupRef> {
        let at = self.slots.iter().position(|slot| slot.as_ref().is_some_and(|(k, _)| *k == key))?;
        self.slots[..=at].rotate_right(1);
        self.slots[0].as_ref().map(|(_, group)| group.clone())
    }

    /// Remembers `key` first, in place of the least recently used.
    fn put(&mut self, key: u128, group: GroupRef) {
        self.slots.rotate_right(1);
        self.slots[0] = Some((key, group));
    }
}

/// The key of an error event with a raw stack and no client frames.
fn cache_key(event: &Event, maps_generation: u64, seed: u64) -> Option<u128> {
    let EventKind::Error { error_type, stack: Some(stack), frames, fingerprint, .. } = &event.kind else {
        return None;
    };
    if !frames.is_empty() {
        return None;
    }
    let custom = fingerprint.as_deref().unwrap_or_default();
    let mut hasher = Xxh3::with_seed(seed);
    hasher.update(&maps_generation.to_le_bytes());
    hasher.update(&(custom.len() as u64).to_le_bytes());
    let fixed = [
        event.project_id.as_str(),
        event.release.as_deref().unwrap_or(""),
        error_type.as_deref().unwrap_or(""),
        if fingerprint.is_some() { "custom" } else { "default" },
    ];
    // Each part is prefixed with its length (and the custom parts by their
    // number), so two different inputs never hash the same bytes.
    for part in fixed.into_iter().chain(custom.iter().map(String::as_str)).chain([stack.as_str()]) {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    Some(hasher.digest128())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sightline_model::DeviceClass;
    use sourcemap::SourceMapBuilder;

    use sightline_model::Frame;

    use super::*;
    use crate::symbolicate::IndexedMap;

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

    fn map() -> Arc<IndexedMap> {
        let mut b = SourceMapBuilder::new(Some("app.min.js"));
        b.add(0, 13, 1, 2, Some("src/app.js"), Some("inner"), false);
        b.add(0, 30, 4, 2, Some("src/app.js"), None, false);
        Arc::new(IndexedMap::new(b.into_sourcemap()))
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
    fn memory_stays_within_its_bound_and_recent_stacks_stay() {
        let cache = RecentStacks::new(64 * 1024);
        assert!(cache.capacity() * SLOT_BYTES <= 64 * 1024 && cache.capacity() >= 64, "{}", cache.capacity());
        let hot = stack(1_000_000);
        for column in 0..2_000 {
            cache.group_error(&mut error("1.0", "TypeError", &stack(column)), &|_| None, 0);
            // A stack that keeps coming back is never the least recently used.
            let lookups = std::cell::Cell::new(0);
            let counting = |_: &str| {
                lookups.set(lookups.get() + 1);
                None
            };
            cache.group_error(&mut error("1.0", "TypeError", &hot), &counting, 0);
            assert!(column == 0 || lookups.get() == 0, "the hot stack was evicted at {column}");
        }
        assert_eq!(cache.len(), cache.capacity(), "full, and never more");
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
