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
//! hit again and age out), hashed with XXH3: the short parts chained
//! through 64-bit hashes, which seed one 128-bit hash of the stack (the
//! first seed drawn at start, so nobody outside can aim at a collision). A
//! miss, the common case in a stream of new stacks, costs one pass over the
//! stack instead of copying it into a key, and a slot is a few dozen bytes.
//! Events grouped by message (no usable frame) and
//! events that sent frames instead of a stack are processed every time.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use sightline_model::{Event, EventKind};
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128_with_seed};

use crate::grouping::{self, Grouping, GroupingBasis};
use crate::process::{decide_group, group_ref, process_error};
use crate::symbolicate::MapLookup;

/// Groups of recent error stacks: a set-associative cache. A key picks one
/// set of [`WAYS`] slots, each set behind its own lock and kept in
/// least-recently-used order. A lookup reads the lock and the set's keys
/// (two cache lines); slots hold no heap memory, so an insert allocates
/// nothing and an eviction frees nothing.
pub struct RecentStacks {
    sets: Box<[Mutex<Set>]>,
    seed: u64,
}

/// Slots per set.
const WAYS: usize = 4;

/// Most recently used first; a slot whose group is `None` is empty.
#[derive(Default)]
struct Set {
    keys: [u128; WAYS],
    groups: [Option<CachedGroup>; WAYS],
}

/// A group as a slot holds it: the fingerprint's 32 hex characters and the
/// basis (the version is [`grouping::CURRENT`]; groups of another version
/// are not kept).
#[derive(Clone, Copy)]
struct CachedGroup {
    fingerprint: [u8; 32],
    basis: GroupingBasis,
}

/// Bytes per slot, the set's lock included.
const SLOT_BYTES: usize = size_of::<Mutex<Set>>().div_ceil(WAYS);

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
        let hit = self.set_of(key).get(key);
        let Some(decided) = hit.map(CachedGroup::grouping).or_else(|| decide_group(event, maps)) else {
            return;
        };
        if hit.is_none()
            && let Some(cached) = CachedGroup::of(&decided)
        {
            self.set_of(key).put(key, cached);
        }
        if let EventKind::Error { group, .. } = &mut event.kind {
            *group = Some(group_ref(decided));
        }
    }

    /// Entries held (for tests).
    pub fn len(&self) -> usize {
        self.sets.iter().map(|set| lock(set).groups.iter().flatten().count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most entries held at once.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    fn set_of(&self, key: u128) -> MutexGuard<'_, Set> {
        lock(&self.sets[key as usize & (self.sets.len() - 1)])
    }
}

fn lock(set: &Mutex<Set>) -> MutexGuard<'_, Set> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

impl Set {
    /// The group of `key`, which becomes the most recently used.
    fn get(&mut self, key: u128) -> Option<CachedGroup> {
        let at = self.keys.iter().position(|&k| k == key)?;
        let group = self.groups[at]?;
        self.keys[..=at].rotate_right(1);
        self.groups[..=at].rotate_right(1);
        Some(group)
    }

    /// Remembers `key` first, in place of the least recently used.
    fn put(&mut self, key: u128, group: CachedGroup) {
        self.keys.rotate_right(1);
        self.groups.rotate_right(1);
        (self.keys[0], self.groups[0]) = (key, Some(group));
    }
}

impl CachedGroup {
    /// `None` for what is decided anew every time (groups by message: the
    /// message is not part of the key) and what a slot cannot hold.
    fn of(decided: &Grouping) -> Option<CachedGroup> {
        let fingerprint = decided.fingerprint.as_bytes().try_into().ok().filter(|f: &[u8; 32]| f.is_ascii())?;
        (decided.basis != GroupingBasis::Message && decided.version == grouping::CURRENT)
            .then_some(CachedGroup { fingerprint, basis: decided.basis })
    }

    fn grouping(self) -> Grouping {
        Grouping {
            fingerprint: String::from_utf8_lossy(&self.fingerprint).into_owned(),
            version: grouping::CURRENT.to_owned(),
            basis: self.basis,
        }
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
    let fixed = [
        event.project_id.as_str(),
        event.release.as_deref().unwrap_or(""),
        error_type.as_deref().unwrap_or(""),
        if fingerprint.is_some() { "custom" } else { "default" },
    ];
    // The short parts are chained, each hashed with the hash of those
    // before it as its seed (a part's length is part of its hash, so two
    // different lists of parts never chain the same inputs), and seed the
    // one pass over the stack.
    let mut chained = xxh3_64_with_seed(&maps_generation.to_le_bytes(), seed);
    chained = xxh3_64_with_seed(&(custom.len() as u64).to_le_bytes(), chained);
    for part in fixed.into_iter().chain(custom.iter().map(String::as_str)) {
        chained = xxh3_64_with_seed(part.as_bytes(), chained);
    }
    Some(xxh3_128_with_seed(stack.as_bytes(), chained))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sightline_model::DeviceClass;
    use sourcemap::SourceMapBuilder;

    use sightline_model::{Frame, GroupRef};

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
        for column in 0..8 * cache.capacity() as u32 {
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
