//! What error processing adds to the ingest of one error event: the CPU
//! work of decoding, validating and enriching a one-event batch, with and
//! without stack parsing, source-map resolution (warm cache) and grouping.
//! HTTP and the bus are left out, so the ratio is an upper bound on the
//! share of the whole ingest. Prints one JSON object.

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use sightline_bench::fixtures::{FRAMES, MINIFIED, RELEASE, error_event, source_map};
use sightline_connectors::SourceMapStore;
use sightline_model::{Encoding, Format, IngestContext, UserAgentInfo, decode_body, enrich, validate_event};

/// The server's allocator, so the costs are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ITERATIONS: u32 = 100_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = SourceMapStore::open(dir.path()).unwrap();
    store.put("p", RELEASE, MINIFIED, &source_map()).unwrap();
    let body = serde_json::to_vec(&json!({ "events": [error_event("v1", 0)] })).unwrap();
    let ctx = IngestContext {
        project_id: "p".into(),
        received_at: 1_800_000_000_000,
        user_agent: UserAgentInfo::parse(Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")),
    };
    let maps = |url: &str| store.get("p", RELEASE, url);

    let run = |process: bool| {
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            let batch = decode_body(black_box(&body), Format::Json, Encoding::Identity).unwrap();
            let mut event = enrich(validate_event(&batch.events[0]).unwrap(), &ctx);
            if process {
                sightline_errors::process_error(&mut event, &maps);
            }
            black_box(event);
        }
        started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
    };
    run(true); // warm the cache and the allocator
    let base = run(false);
    let processed = run(true);
    println!(
        "{}",
        json!({
            "frames": FRAMES,
            "ingest_ns_per_error_event": base.round(),
            "with_processing_ns": processed.round(),
            "processing_ns": (processed - base).round(),
            "added_percent": ((processed / base - 1.0) * 100.0).round(),
        })
    );
}
