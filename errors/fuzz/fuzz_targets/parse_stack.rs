//! Any text as a stack: parsing, in-app rules and grouping never panic, and
//! frames stay within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_errors::grouping::{GroupingInput, group};
use sightline_errors::parse_stack;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let frames = parse_stack(text);
    assert!(frames.len() <= 256);
    let g = group(&GroupingInput { error_type: Some("Error"), message: Some(text), frames: &frames, fingerprint: None });
    assert_eq!(g.fingerprint.len(), 32);
});
