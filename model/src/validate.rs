//! Checks one decoded event against the v1 contract and its limits.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::enrich::path_of;
use crate::event::{ClientEvent, EventKind, Frame, PropValue, VitalName};
use crate::limits::{
    MAX_FINGERPRINT_PARTS, MAX_FRAMES, MAX_PROP_KEY_BYTES, MAX_PROPS, MAX_STACK_BYTES, MAX_STRING_BYTES,
};
use crate::wire::{InvalidReason, WireKey, WireValue};

/// Why one event of a batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// `missing_field`, `invalid_type`, `invalid_value`, `too_long`,
    /// `too_many_elements`, `too_deep` or `unknown_type`.
    pub code: &'static str,
    /// The field that failed, as a path inside the event (`props.plan`).
    pub field: String,
    pub message: String,
}

impl Rejection {
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection { code, field: field.into(), message: message.into() }
    }

    fn missing(field: &str) -> Self {
        Rejection::new("missing_field", field, format!("`{field}` is required"))
    }

    fn wrong_type(field: &str, expected: &str, got: &WireValue) -> Self {
        if let WireValue::Invalid(reason) = got {
            return Rejection::new(reason.code(), field, format!("`{field}` broke a limit: {reason:?}"));
        }
        Rejection::new("invalid_type", field, format!("`{field}` must be {expected}, not {}", got.type_name()))
    }
}

/// Validates one event of a batch. Its strings are moved out of `value`
/// into the event, not copied (copies took a twentieth of the ingest
/// threads' time, stacks above all).
pub fn validate_event(value: &mut WireValue) -> Result<ClientEvent, Rejection> {
    if let Some((field, reason)) = first_invalid(value) {
        let field = match field.strip_prefix('.') {
            None if field.is_empty() => "event".to_owned(),
            None => field,
            Some(field) => field.to_owned(),
        };
        return Err(Rejection::new(reason.code(), field.clone(), format!("`{field}` broke a limit: {reason:?}")));
    }
    let mut event = Fields::new(value, "")?;
    let kind_name = event.required_str("type", MAX_STRING_BYTES)?;
    let anonymous_id = event.optional_str("anonymous_id", MAX_STRING_BYTES)?;
    let url = event.optional_str("url", MAX_STRING_BYTES)?;
    let kind = match kind_name.as_str() {
        "pageview" => {
            if anonymous_id.is_none() {
                return Err(Rejection::missing("anonymous_id"));
            }
            if url.is_none() {
                return Err(Rejection::missing("url"));
            }
            EventKind::Pageview {
                referrer: event.optional_str("referrer", MAX_STRING_BYTES)?,
                title: event.optional_str("title", MAX_STRING_BYTES)?,
            }
        }
        "event" => EventKind::Event {
            name: non_empty(event.required_str("name", MAX_STRING_BYTES)?, "name")?,
            props: event.props()?,
        },
        "error" => {
            let frames = event.frames()?;
            let stack = event.optional_str("stack", MAX_STACK_BYTES)?;
            let error_type = event.optional_str("error_type", MAX_STRING_BYTES)?;
            let message = event.optional_str("message", MAX_STRING_BYTES)?;
            if error_type.is_none() && message.is_none() && stack.is_none() && frames.is_empty() {
                return Err(Rejection::new(
                    "missing_field",
                    "message",
                    "an error needs at least one of `error_type`, `message`, `stack` or `frames`",
                ));
            }
            EventKind::Error { error_type, message, stack, frames, fingerprint: event.fingerprint()?, group: None }
        }
        "vital" => {
            let name = event.required_str("name", MAX_STRING_BYTES)?;
            let name = VitalName::parse(&name).ok_or_else(|| {
                Rejection::new(
                    "invalid_value",
                    "name",
                    format!("unknown vital `{name}`: use LCP, INP, CLS, FCP, TTFB or FID"),
                )
            })?;
            let value = event.required_number("value")?;
            if !value.is_finite() || value < 0.0 {
                return Err(Rejection::new("invalid_value", "value", "`value` must be a finite number ≥ 0"));
            }
            if url.is_none() {
                return Err(Rejection::missing("url"));
            }
            EventKind::Vital { name, value }
        }
        other => {
            return Err(Rejection::new(
                "unknown_type",
                "type",
                format!("unknown event type `{other}`: use pageview, event, error or vital"),
            ));
        }
    };
    // One parse checks the url and finds its path: a second one cost a
    // tenth of the ingest threads' time (perf).
    let path = match url.as_deref().map(path_of) {
        Some(None) => {
            return Err(Rejection::new("invalid_value", "url", "`url` must be an absolute URL or a path"));
        }
        Some(Some(path)) => path,
        None => String::new(),
    };
    Ok(ClientEvent {
        ts: event.optional_int("ts")?,
        anonymous_id: anonymous_id.unwrap_or_default(),
        session_id: event.optional_str("session_id", MAX_STRING_BYTES)?,
        url,
        path,
        release: event.optional_str("release", MAX_STRING_BYTES)?,
        kind,
    })
}

/// The first value dropped while decoding, anywhere in the event, and its
/// path below `value` (`.key` and `[index]` steps). The path is written only
/// for a value found: writing every key's path on the way took ten
/// allocations per valid event.
fn first_invalid(value: &WireValue) -> Option<(String, InvalidReason)> {
    match value {
        WireValue::Invalid(reason) => Some((String::new(), *reason)),
        WireValue::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_invalid(v).map(|(below, reason)| (format!("[{i}]{below}"), reason))),
        WireValue::Map(entries) => {
            entries.iter().find_map(|(k, v)| first_invalid(v).map(|(below, reason)| (format!(".{k}{below}"), reason)))
        }
        _ => None,
    }
}

fn non_empty(s: String, field: &str) -> Result<String, Rejection> {
    if s.is_empty() {
        Err(Rejection::new("invalid_value", field, format!("`{field}` must not be empty")))
    } else {
        Ok(s)
    }
}

/// The fields of one object, addressed with their path for error messages.
/// A string read is moved out (each field is read once).
struct Fields<'a> {
    entries: &'a mut [(WireKey, WireValue)],
    prefix: String,
}

/// The path of `key` in an object at `prefix`, for error messages: written
/// only for a field that is rejected.
fn field_path(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}")
}

/// The value of `key` among `entries`, unless it is absent or null.
fn find<'v>(entries: &'v mut [(WireKey, WireValue)], key: &str) -> Option<&'v mut WireValue> {
    entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| **v != WireValue::Null)
}

impl<'a> Fields<'a> {
    fn new(value: &'a mut WireValue, prefix: &str) -> Result<Self, Rejection> {
        match value {
            WireValue::Map(entries) => Ok(Fields { entries, prefix: prefix.to_owned() }),
            other => {
                let field = if prefix.is_empty() { "event" } else { prefix.trim_end_matches('.') };
                Err(Rejection::wrong_type(field, "an object", other))
            }
        }
    }

    fn path(&self, key: &str) -> String {
        field_path(&self.prefix, key)
    }

    fn get(&mut self, key: &str) -> Option<&mut WireValue> {
        find(self.entries, key)
    }

    fn optional_str(&mut self, key: &str, max: usize) -> Result<Option<String>, Rejection> {
        match find(self.entries, key) {
            None => Ok(None),
            Some(WireValue::Str(s)) if s.len() <= max => Ok(Some(std::mem::take(s))),
            Some(WireValue::Str(s)) => {
                let path = field_path(&self.prefix, key);
                let message = format!("`{path}` is {} bytes, the limit is {max}", s.len());
                Err(Rejection::new("too_long", path, message))
            }
            Some(other) => Err(Rejection::wrong_type(&field_path(&self.prefix, key), "a string", other)),
        }
    }

    fn required_str(&mut self, key: &str, max: usize) -> Result<String, Rejection> {
        self.optional_str(key, max)?.ok_or_else(|| Rejection::missing(&self.path(key)))
    }

    fn optional_int(&mut self, key: &str) -> Result<Option<i64>, Rejection> {
        match find(self.entries, key) {
            None => Ok(None),
            Some(WireValue::Int(i)) => Ok(Some(*i)),
            Some(WireValue::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(*f as i64)),
            Some(other) => Err(Rejection::wrong_type(&field_path(&self.prefix, key), "an integer", other)),
        }
    }

    fn optional_u32(&mut self, key: &str) -> Result<Option<u32>, Rejection> {
        self.optional_int(key)?
            .map(|i| {
                u32::try_from(i).map_err(|_| {
                    Rejection::new("invalid_value", self.path(key), format!("`{}` is out of range", self.path(key)))
                })
            })
            .transpose()
    }

    fn required_number(&mut self, key: &str) -> Result<f64, Rejection> {
        match find(self.entries, key) {
            None => Err(Rejection::missing(&field_path(&self.prefix, key))),
            Some(WireValue::Int(i)) => Ok(*i as f64),
            Some(WireValue::Float(f)) => Ok(*f),
            Some(other) => Err(Rejection::wrong_type(&field_path(&self.prefix, key), "a number", other)),
        }
    }

    fn props(&mut self) -> Result<BTreeMap<String, PropValue>, Rejection> {
        let Some(value) = self.get("props") else {
            return Ok(BTreeMap::new());
        };
        let WireValue::Map(entries) = value else {
            return Err(Rejection::wrong_type("props", "an object", value));
        };
        if entries.len() > MAX_PROPS {
            return Err(Rejection::new(
                "too_many_elements",
                "props",
                format!("`props` has {} keys, the limit is {MAX_PROPS}", entries.len()),
            ));
        }
        let mut props = BTreeMap::new();
        for (key, value) in entries.iter_mut() {
            if key.len() > MAX_PROP_KEY_BYTES || key.is_empty() {
                return Err(Rejection::new(
                    "invalid_value",
                    "props",
                    format!("property keys must be 1 to {MAX_PROP_KEY_BYTES} bytes"),
                ));
            }
            let prop = match value {
                WireValue::Str(s) if s.len() <= MAX_STRING_BYTES => PropValue::Str(std::mem::take(s)),
                WireValue::Str(_) => {
                    let field = format!("props.{key}");
                    return Err(Rejection::new("too_long", field, format!("the limit is {MAX_STRING_BYTES} bytes")));
                }
                WireValue::Int(i) => PropValue::Num(*i as f64),
                WireValue::Float(f) if f.is_finite() => PropValue::Num(*f),
                WireValue::Bool(b) => PropValue::Bool(*b),
                other => {
                    return Err(Rejection::wrong_type(&format!("props.{key}"), "a string, number or boolean", other));
                }
            };
            props.insert(std::mem::take(key).into_owned(), prop);
        }
        Ok(props)
    }

    fn frames(&mut self) -> Result<Vec<Frame>, Rejection> {
        let Some(value) = self.get("frames") else {
            return Ok(Vec::new());
        };
        let WireValue::Array(items) = value else {
            return Err(Rejection::wrong_type("frames", "an array", value));
        };
        if items.len() > MAX_FRAMES {
            return Err(Rejection::new("too_many_elements", "frames", format!("the limit is {MAX_FRAMES} frames")));
        }
        items
            .iter_mut()
            .enumerate()
            .map(|(i, item)| {
                let mut f = Fields::new(item, &format!("frames[{i}]."))?;
                Ok(Frame {
                    function: f.optional_str("function", MAX_STRING_BYTES)?,
                    file: f.optional_str("file", MAX_STRING_BYTES)?,
                    line: f.optional_u32("line")?,
                    column: f.optional_u32("column")?,
                    in_app: false,
                    minified: None,
                })
            })
            .collect()
    }

    fn fingerprint(&mut self) -> Result<Option<Vec<String>>, Rejection> {
        let Some(value) = self.get("fingerprint") else {
            return Ok(None);
        };
        let WireValue::Array(items) = value else {
            return Err(Rejection::wrong_type("fingerprint", "an array of strings", value));
        };
        if items.is_empty() || items.len() > MAX_FINGERPRINT_PARTS {
            return Err(Rejection::new(
                "invalid_value",
                "fingerprint",
                format!("`fingerprint` needs 1 to {MAX_FINGERPRINT_PARTS} strings"),
            ));
        }
        items
            .iter_mut()
            .enumerate()
            .map(|(i, item)| match item {
                WireValue::Str(s) if s.len() <= MAX_STRING_BYTES => Ok(std::mem::take(s)),
                other => Err(Rejection::wrong_type(&format!("fingerprint[{i}]"), "a short string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Encoding, Format, decode_body};

    fn one(json: &str) -> Result<ClientEvent, Rejection> {
        let body = format!(r#"{{"events":[{json}]}}"#);
        let mut batch = decode_body(body.as_bytes(), Format::Json, Encoding::Identity).unwrap();
        validate_event(&mut batch.events[0])
    }

    #[test]
    fn each_type_validates() {
        let pv = one(
            r#"{"type":"pageview","anonymous_id":"a","url":"https://x.example/p?q=1","referrer":"https://g.example/"}"#,
        )
        .unwrap();
        assert_eq!(pv.kind, EventKind::Pageview { referrer: Some("https://g.example/".into()), title: None });
        let ev = one(r#"{"type":"event","name":"signup","props":{"plan":"pro","seats":3,"trial":true}}"#).unwrap();
        let EventKind::Event { props, .. } = ev.kind else { panic!() };
        assert_eq!(props["seats"], PropValue::Num(3.0));
        let err =
            one(r#"{"type":"error","error_type":"TypeError","message":"x is undefined","stack":"at f (a.js:1:2)"}"#)
                .unwrap();
        assert_eq!(err.kind.type_name(), "error");
        let vital = one(r#"{"type":"vital","name":"LCP","value":1234.5,"url":"/"}"#).unwrap();
        assert_eq!(vital.kind, EventKind::Vital { name: VitalName::Lcp, value: 1234.5 });
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (r#"{"type":"pageview","url":"/"}"#, "missing_field", "anonymous_id"),
            (r#"{"type":"pageview","anonymous_id":5,"url":"/"}"#, "invalid_type", "anonymous_id"),
            (r#"{"type":"bogus"}"#, "unknown_type", "type"),
            (r#"{"anonymous_id":"a"}"#, "missing_field", "type"),
            (r#"{"type":"vital","name":"LCP","value":-1,"url":"/"}"#, "invalid_value", "value"),
            (r#"{"type":"vital","name":"XYZ","value":1,"url":"/"}"#, "invalid_value", "name"),
            (r#"{"type":"event","name":"x","props":{"a":{"b":1}}}"#, "invalid_type", "props.a"),
            (
                r#"{"type":"event","name":"x","props":{"a":[[[[[[[[[1]]]]]]]]]}}"#,
                "too_deep",
                "props.a[0][0][0][0][0][0]",
            ),
            (r#"{"type":"error","frames":[{"line":"x"}]}"#, "invalid_type", "frames[0].line"),
            (r#"{"type":"error"}"#, "missing_field", "message"),
            (r#"{"type":"pageview","anonymous_id":"a","url":"no url"}"#, "invalid_value", "url"),
            ("7", "invalid_type", "event"),
        ];
        for (json, code, field) in cases {
            let r = one(json).unwrap_err();
            assert_eq!((r.code, r.field.as_str()), (code, field), "{json}: {}", r.message);
        }
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        let r = one(&format!(r#"{{"type":"pageview","anonymous_id":"{long}","url":"/"}}"#)).unwrap_err();
        assert_eq!((r.code, r.field.as_str()), ("too_long", "anonymous_id"));
        // A stack may be longer than an ordinary string, up to its own limit.
        assert!(one(&format!(r#"{{"type":"error","stack":"{long}"}}"#)).is_ok());
        let huge = "x".repeat(MAX_STACK_BYTES + 1);
        let r = one(&format!(r#"{{"type":"error","stack":"{huge}"}}"#)).unwrap_err();
        assert_eq!((r.code, r.field.as_str()), ("too_long", "stack"));
        let props: Vec<String> = (0..=MAX_PROPS).map(|i| format!(r#""k{i}":1"#)).collect();
        let r = one(&format!(r#"{{"type":"event","name":"x","props":{{{}}}}}"#, props.join(","))).unwrap_err();
        assert_eq!((r.code, r.field.as_str()), ("too_many_elements", "props"));
    }
}
