//! Any bytes, any format, any encoding: decoding and validating a batch
//! never panics, and what it accepts stays within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_model::{Encoding, Format, decode_body, validate_event};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let format = if selector & 1 == 0 { Format::Json } else { Format::MessagePack };
    let encoding = if selector & 2 == 0 { Encoding::Identity } else { Encoding::Gzip };
    if let Ok(mut batch) = decode_body(body, format, encoding) {
        assert!(batch.events.len() <= sightline_model::limits::MAX_EVENTS_PER_BATCH);
        for event in &mut batch.events {
            let _ = validate_event(event);
        }
    }
});
