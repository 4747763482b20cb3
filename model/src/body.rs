//! From request bytes to a batch of bounded event values.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::limits::{MAX_BODY_BYTES, MAX_EVENT_DEPTH, MAX_EVENTS_PER_BATCH, MAX_PARSER_DEPTH};
use crate::wire::{BoundedValue, WireValue};

/// The serialization of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MessagePack,
}

impl Format {
    /// The format named by a `Content-Type` header; JSON when absent.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Format> {
        let Some(ct) = content_type else {
            return Some(Format::Json);
        };
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            // sendBeacon sends text/plain, curl -d sends a form type: both carry JSON here.
            "" | "application/json" | "text/plain" | "application/x-www-form-urlencoded" => Some(Format::Json),
            "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => Some(Format::MessagePack),
            _ => None,
        }
    }
}

/// The transfer compression of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The encoding named by a `Content-Encoding` header.
    pub fn from_content_encoding(value: Option<&str>) -> Option<Encoding> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Some(Encoding::Gzip),
            _ => None,
        }
    }
}

/// Why a whole body was refused. Per-event problems are not errors here:
/// they are rejections of single events, see [`crate::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is larger than {limit} bytes{}", if *.decompressed { " after decompression" } else { "" })]
    TooLarge { limit: usize, decompressed: bool },
    #[error("batch has more than {limit} events")]
    TooManyEvents { limit: usize },
    #[error("body is not valid gzip: {0}")]
    BadGzip(String),
    #[error("body is not a batch: {0}")]
    NotABatch(String),
}

impl BodyError {
    /// The machine-readable code of the contract's error body.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge { .. } => "body_too_large",
            BodyError::TooManyEvents { .. } => "too_many_events",
            BodyError::BadGzip(_) => "invalid_gzip",
            BodyError::NotABatch(_) => "invalid_batch",
        }
    }

    /// The request field that failed.
    pub fn field(&self) -> &'static str {
        match self {
            BodyError::TooManyEvents { .. } => "events",
            _ => "body",
        }
    }
}

/// A decoded batch: one bounded value per event, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    pub events: Vec<WireValue>,
}

/// Decodes a request body, enforcing the size, count and depth limits.
pub fn decode_body(body: &[u8], format: Format, encoding: Encoding) -> Result<DecodedBatch, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge { limit: MAX_BODY_BYTES, decompressed: false });
    }
    let inflated;
    let bytes = match encoding {
        Encoding::Identity => body,
        Encoding::Gzip => {
            inflated = gunzip_capped(body, MAX_BODY_BYTES)?;
            &inflated[..]
        }
    };
    match format {
        Format::Json => {
            // One pass over the whole body instead of one per string: a
            // `&str` source lets serde_json skip its own check of each
            // string (a seventh of the ingest threads' instructions,
            // callgrind). JSON outside strings is ASCII, so a body that is
            // not UTF-8 was refused as a whole before too.
            let text = std::str::from_utf8(bytes)
                .map_err(|e| BodyError::NotABatch(format!("body is not UTF-8 (at byte {})", e.valid_up_to())))?;
            let mut de = serde_json::Deserializer::from_str(text);
            let batch = BatchSeed.deserialize(&mut de).map_err(json_error)?;
            de.end().map_err(json_error)?;
            batch
        }
        Format::MessagePack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            // Bounded like serde_json's recursion limit: deep enough for any
            // batch, shallow enough for a 2 MiB thread stack.
            de.set_max_depth(MAX_PARSER_DEPTH);
            BatchSeed.deserialize(&mut de).map_err(|e| BodyError::NotABatch(e.to_string()))?
        }
    }
}

fn json_error(e: serde_json::Error) -> BodyError {
    BodyError::NotABatch(e.to_string())
}

/// Inflates gzip, stopping as soon as the output passes `cap` bytes.
pub fn gunzip_capped(body: &[u8], cap: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(cap));
    flate2::read::MultiGzDecoder::new(body)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > cap {
        return Err(BodyError::TooLarge { limit: cap, decompressed: true });
    }
    Ok(out)
}

/// The top level `{"events": [...]}`; other keys are ignored.
struct BatchSeed;

impl<'de> DeserializeSeed<'de> for BatchSeed {
    type Value = Result<DecodedBatch, BodyError>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed {
    type Value = Result<DecodedBatch, BodyError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"events": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "events" && events.is_none() {
                events = Some(map.next_value_seed(EventsSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(match events {
            Some(Ok(events)) => Ok(DecodedBatch { events }),
            Some(Err(e)) => Err(e),
            None => Err(BodyError::NotABatch("missing field `events`".into())),
        })
    }
}

struct EventsSeed;

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Result<Vec<WireValue>, BodyError>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed {
    type Value = Result<Vec<WireValue>, BodyError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let seed = BoundedValue { depth: MAX_EVENT_DEPTH };
        let mut events = Vec::new();
        while events.len() < MAX_EVENTS_PER_BATCH {
            match seq.next_element_seed(seed)? {
                Some(v) => events.push(v),
                None => return Ok(Ok(events)),
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_none() {
            return Ok(Ok(events));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(BodyError::TooManyEvents { limit: MAX_EVENTS_PER_BATCH }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn json_batch_decodes() {
        let body = br#"{"events":[{"type":"pageview","url":"https://a.example/x"}],"sent_at":1}"#;
        let batch = decode_body(body, Format::Json, Encoding::Identity).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].get("type"), Some(&WireValue::Str("pageview".into())));
    }

    #[test]
    fn event_field_names_are_not_copied_and_other_keys_are_kept_as_sent() {
        let body = br#"{"events":[{"type":"event","name":"signup","props":{"plan":"pro"}}]}"#;
        let batch = decode_body(body, Format::Json, Encoding::Identity).unwrap();
        let WireValue::Map(fields) = &batch.events[0] else { panic!("an event is a map") };
        assert!(fields.iter().all(|(key, _)| matches!(key, std::borrow::Cow::Borrowed(_))), "{fields:?}");
        let Some(WireValue::Map(props)) = batch.events[0].get("props") else { panic!("props is a map") };
        assert_eq!(props[0].0, "plan");
        assert!(matches!(props[0].0, std::borrow::Cow::Owned(_)));
    }

    #[test]
    fn not_a_batch_is_refused() {
        for body in [&b"[1,2]"[..], b"{}", b"{\"events\": 3}", b"{\"events\": [", b"nope"] {
            let err = decode_body(body, Format::Json, Encoding::Identity).unwrap_err();
            assert_eq!(err.code(), "invalid_batch", "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn strings_are_read_as_sent_and_a_body_that_is_not_utf8_is_refused() {
        let body = r#"{"events":[{"type":"pageview","title":"Café ☕ \u00e9\ud83d\ude00"}]}"#;
        let batch = decode_body(body.as_bytes(), Format::Json, Encoding::Identity).unwrap();
        assert_eq!(batch.events[0].get("title"), Some(&WireValue::Str("Café ☕ é😀".into())));
        let mut broken = body.as_bytes().to_vec();
        let at = body.find('é').unwrap();
        broken[at + 1] = b'!';
        let err = decode_body(&broken, Format::Json, Encoding::Identity).unwrap_err();
        assert_eq!(err, BodyError::NotABatch(format!("body is not UTF-8 (at byte {at})")));
        assert_eq!(err.code(), "invalid_batch");
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
        assert!(bomb.len() < MAX_BODY_BYTES);
        let err = decode_body(&bomb, Format::Json, Encoding::Gzip).unwrap_err();
        assert_eq!(err, BodyError::TooLarge { limit: MAX_BODY_BYTES, decompressed: true });
    }

    #[test]
    fn too_many_events_is_refused() {
        let events = vec!["{}"; MAX_EVENTS_PER_BATCH + 1].join(",");
        let body = format!(r#"{{"events":[{events}]}}"#);
        let err = decode_body(body.as_bytes(), Format::Json, Encoding::Identity).unwrap_err();
        assert_eq!(err.code(), "too_many_events");
        let events = vec!["{}"; MAX_EVENTS_PER_BATCH].join(",");
        let body = format!(r#"{{"events":[{events}]}}"#);
        assert!(decode_body(body.as_bytes(), Format::Json, Encoding::Identity).is_ok());
    }

    #[test]
    fn deep_nesting_inside_an_event_marks_only_that_event() {
        let deep = format!("{}1{}", "[".repeat(20), "]".repeat(20));
        let body = format!(r#"{{"events":[{{"type":"event","props":{{"x":{deep}}}}},{{"type":"pageview"}}]}}"#);
        let batch = decode_body(body.as_bytes(), Format::Json, Encoding::Identity).unwrap();
        let props = batch.events[0].get("props").unwrap();
        assert!(matches!(props.get("x"), Some(WireValue::Array(_))));
        assert!(format!("{:?}", batch.events[0]).contains("TooDeep"));
        assert_eq!(batch.events[1].get("type"), Some(&WireValue::Str("pageview".into())));
    }

    #[test]
    fn nesting_bomb_is_a_bad_batch_not_a_crash() {
        let deep = format!(r#"{{"events":[{}]}}"#, "[".repeat(100_000));
        assert!(decode_body(deep.as_bytes(), Format::Json, Encoding::Identity).is_err());
        // MessagePack: 1-byte fixarray headers nested a million deep.
        let mut mp = vec![0x81, 0xa6];
        mp.extend_from_slice(b"events");
        mp.extend(std::iter::repeat_n(0x91u8, 1_000_000));
        assert!(decode_body(&mp, Format::MessagePack, Encoding::Identity).is_err());
    }

    #[test]
    fn lying_msgpack_lengths_do_not_allocate() {
        // {"events": array32 with 4 billion declared elements and none present}
        let mut mp = vec![0x81, 0xa6];
        mp.extend_from_slice(b"events");
        mp.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode_body(&mp, Format::MessagePack, Encoding::Identity).is_err());
        // A str32 claiming 4 GiB.
        let mut mp = vec![0x81, 0xa6];
        mp.extend_from_slice(b"events");
        mp.extend_from_slice(&[0x91, 0x81, 0xa1, b'a', 0xdb, 0xff, 0xff, 0xff, 0xff, b'x']);
        assert!(decode_body(&mp, Format::MessagePack, Encoding::Identity).is_err());
    }

    proptest::proptest! {
        /// The fuzz target's property on stable: arbitrary bytes in any
        /// format and encoding never panic the decoder or the validator.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), selector in 0u8..4) {
            let format = if selector & 1 == 0 { Format::Json } else { Format::MessagePack };
            let encoding = if selector & 2 == 0 { Encoding::Identity } else { Encoding::Gzip };
            if let Ok(mut batch) = decode_body(&body, format, encoding) {
                for event in &mut batch.events {
                    let _ = crate::validate::validate_event(event);
                }
            }
        }

        /// JSON and MessagePack carry the same batch to the same values.
        #[test]
        fn json_and_msgpack_decode_alike(
            names in proptest::collection::vec("[a-z]{1,12}", 1..20),
            values in proptest::collection::vec(-1_000_000i64..1_000_000, 1..20),
        ) {
            let events: Vec<serde_json::Value> = names
                .iter()
                .zip(values.iter())
                .map(|(n, v)| serde_json::json!({"type": "event", "name": n, "props": {"n": v, "s": n, "b": v % 2 == 0}}))
                .collect();
            let batch = serde_json::json!({ "events": events });
            let from_json = decode_body(&serde_json::to_vec(&batch).unwrap(), Format::Json, Encoding::Identity).unwrap();
            let from_msgpack = decode_body(&rmp_serde::to_vec_named(&batch).unwrap(), Format::MessagePack, Encoding::Identity).unwrap();
            proptest::prop_assert_eq!(&from_json, &from_msgpack);
            let gz = gzip(&serde_json::to_vec(&batch).unwrap());
            proptest::prop_assert_eq!(decode_body(&gz, Format::Json, Encoding::Gzip).unwrap(), from_json);
        }
    }

    #[test]
    fn content_headers_are_understood() {
        assert_eq!(Format::from_content_type(Some("application/json; charset=utf-8")), Some(Format::Json));
        assert_eq!(Format::from_content_type(Some("application/msgpack")), Some(Format::MessagePack));
        assert_eq!(Format::from_content_type(Some("image/png")), None);
        assert_eq!(Encoding::from_content_encoding(Some("gzip")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_content_encoding(Some("br")), None);
    }
}
