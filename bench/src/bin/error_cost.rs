//! What error processing adds to the ingest of one error event: the CPU
//! work of decoding, validating and enriching a one-event batch, without
//! processing, with stack parsing, source-map resolution (warm map cache)
//! and grouping of a stack seen for the first time, and with a repeated
//! stack answered by `RecentStacks`. HTTP and the bus are left out. Prints
//! one JSON object.

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use sightline_bench::fixtures::{FRAMES, MINIFIED, RELEASE, error_event, source_map};
use sightline_connectors::SourceMapStore;
use sightline_errors::RecentStacks;
use sightline_model::{Encoding, Format, IngestContext, UserAgentInfo, decode_body, enrich, validate_event};

/// The server's allocator, so the costs are the server's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ITERATIONS: u32 = 100_000;
const ROUNDS: u32 = 5;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = SourceMapStore::open(dir.path()).unwrap();
    store.put("p", RELEASE, MINIFIED, &source_map()).unwrap();
    let body = serde_json::to_vec(&json!({ "events": [error_event("v1", 0, 0)] })).unwrap();
    let recent = RecentStacks::new(32 << 20);
    let ctx = IngestContext::new(
        "p".into(),
        1_800_000_000_000,
        UserAgentInfo::parse(Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")),
    );
    let maps = |url: &str| store.get("p", RELEASE, url);

    let generation = std::cell::Cell::new(0);
    let run = |processing: Processing| {
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            let mut batch = decode_body(black_box(&body), Format::Json, Encoding::Identity).unwrap();
            let mut event = enrich(validate_event(&mut batch.events[0]).unwrap(), &ctx);
            match processing {
                Processing::None => {}
                // A maps generation never used before makes the stack new
                // to `RecentStacks`: a miss, processing, an insert.
                Processing::NewStack => {
                    generation.set(generation.get() + 1);
                    recent.group_error(&mut event, &maps, generation.get())
                }
                Processing::RepeatedStack => recent.group_error(&mut event, &maps, 0),
            }
            black_box(event);
        }
        started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
    };
    run(Processing::NewStack); // warm the map cache and the allocator
    run(Processing::RepeatedStack); // and the stack
    // The best of several alternating rounds: a shared 2-core machine adds
    // noise in one direction only.
    let (mut base, mut new_stack, mut repeated) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        base = base.min(run(Processing::None));
        new_stack = new_stack.min(run(Processing::NewStack));
        repeated = repeated.min(run(Processing::RepeatedStack));
    }
    println!(
        "{}",
        json!({
            "frames": FRAMES,
            "ingest_ns_per_error_event": base.round(),
            "new_stack_processing_ns": (new_stack - base).round(),
            "repeated_stack_processing_ns": (repeated - base).round(),
        })
    );
}

#[derive(Clone, Copy)]
enum Processing {
    None,
    /// Parse, resolve and group, as for a stack seen the first time (the
    /// `RecentStacks` miss and insert included).
    NewStack,
    /// What `RecentStacks` does for a stack it holds.
    RepeatedStack,
}
