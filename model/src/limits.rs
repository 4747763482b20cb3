//! Every limit the ingest enforces, in one place.

/// Largest accepted request body, on the wire and again after decompression.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;
/// Longest ordinary string field, in bytes.
pub const MAX_STRING_BYTES: usize = 8 * 1024;
/// Longest `stack` field, in bytes.
pub const MAX_STACK_BYTES: usize = 64 * 1024;
/// Most properties on a custom event.
pub const MAX_PROPS: usize = 64;
/// Longest property key, in bytes.
pub const MAX_PROP_KEY_BYTES: usize = 256;
/// Most frames on an error event.
pub const MAX_FRAMES: usize = 256;
/// Most parts of an explicit error fingerprint.
pub const MAX_FINGERPRINT_PARTS: usize = 32;
/// Deepest nesting inside one event (the event object itself is depth 1).
/// Legitimate events need 3 (event → props/frames → frame); anything deeper
/// is rejected for that event only.
pub const MAX_EVENT_DEPTH: usize = 8;
/// Most elements kept of any array or map while decoding; the rest are
/// skipped without being stored and the value is marked as too large.
pub const MAX_CONTAINER_LEN: usize = 1024;
/// A client clock this far ahead of the server's is replaced by server time.
pub const MAX_CLOCK_SKEW_MS: i64 = 24 * 60 * 60 * 1000;
/// Deepest nesting the MessagePack parser follows at all (serde_json's own
/// limit is 128); a body nested deeper is not a batch.
pub const MAX_PARSER_DEPTH: usize = 64;
