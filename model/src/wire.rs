//! A bounded, format-neutral value tree decoded straight from JSON or
//! MessagePack.
//!
//! Decoding never stores more than the limits allow: strings longer than
//! [`MAX_STACK_BYTES`], containers longer than [`MAX_CONTAINER_LEN`] and
//! nesting deeper than the depth it is given are consumed without being kept
//! and replaced by [`WireValue::Invalid`], so one bad event is rejected on its
//! own and never makes the decoder allocate by a length it was told.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::limits::{MAX_CONTAINER_LEN, MAX_STACK_BYTES, MAX_STRING_BYTES};

/// A decoded value, or a marker saying why it was not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum WireValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<WireValue>),
    Map(Vec<(WireKey, WireValue)>),
    /// Dropped while decoding; the reason says which limit it broke.
    Invalid(InvalidReason),
}

/// A map key: the names of the event fields the validator reads are not
/// copied (seven allocations of a page view's ten, before).
pub type WireKey = Cow<'static, str>;

/// The keys [`WireKey`] holds without a copy.
const KNOWN_KEYS: [&str; 20] = [
    "type",
    "anonymous_id",
    "session_id",
    "url",
    "ts",
    "referrer",
    "title",
    "release",
    "name",
    "value",
    "props",
    "error_type",
    "message",
    "stack",
    "frames",
    "function",
    "file",
    "line",
    "column",
    "fingerprint",
];

fn wire_key(key: &str) -> WireKey {
    match KNOWN_KEYS.iter().find(|known| **known == key) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(key.to_owned()),
    }
}

/// Why a value was not kept while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    TooDeep,
    TooManyElements,
    TooLong,
    Binary,
    IntegerOutOfRange,
}

impl InvalidReason {
    pub fn code(self) -> &'static str {
        match self {
            InvalidReason::TooDeep => "too_deep",
            InvalidReason::TooManyElements => "too_many_elements",
            InvalidReason::TooLong => "too_long",
            InvalidReason::Binary => "invalid_type",
            InvalidReason::IntegerOutOfRange => "invalid_value",
        }
    }
}

impl WireValue {
    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            WireValue::Null => "null",
            WireValue::Bool(_) => "boolean",
            WireValue::Int(_) | WireValue::Float(_) => "number",
            WireValue::Str(_) => "string",
            WireValue::Array(_) => "array",
            WireValue::Map(_) => "object",
            WireValue::Invalid(_) => "invalid value",
        }
    }

    /// The first value stored under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&WireValue> {
        match self {
            WireValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Decodes one [`WireValue`] allowing `depth` levels of containers.
#[derive(Clone, Copy)]
pub struct BoundedValue {
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for BoundedValue {
    type Value = WireValue;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<WireValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn keep_string(s: &str) -> WireValue {
    if s.len() > MAX_STACK_BYTES { WireValue::Invalid(InvalidReason::TooLong) } else { WireValue::Str(s.to_owned()) }
}

impl<'de> Visitor<'de> for BoundedValue {
    type Value = WireValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON or MessagePack value")
    }

    fn visit_unit<E>(self) -> Result<WireValue, E> {
        Ok(WireValue::Null)
    }
    fn visit_none<E>(self) -> Result<WireValue, E> {
        Ok(WireValue::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<WireValue, D::Error> {
        self.deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<WireValue, E> {
        Ok(WireValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<WireValue, E> {
        Ok(WireValue::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<WireValue, E> {
        Ok(i64::try_from(v).map(WireValue::Int).unwrap_or(WireValue::Invalid(InvalidReason::IntegerOutOfRange)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<WireValue, E> {
        Ok(WireValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<WireValue, E> {
        Ok(keep_string(v))
    }
    fn visit_string<E>(self, v: String) -> Result<WireValue, E> {
        if v.len() > MAX_STACK_BYTES { Ok(WireValue::Invalid(InvalidReason::TooLong)) } else { Ok(WireValue::Str(v)) }
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<WireValue, E> {
        Ok(WireValue::Invalid(InvalidReason::Binary))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireValue, A::Error> {
        if self.depth == 0 {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(WireValue::Invalid(InvalidReason::TooDeep));
        }
        let inner = BoundedValue { depth: self.depth - 1 };
        // Never trust a declared length: grow as elements really arrive.
        let mut items = Vec::new();
        while items.len() < MAX_CONTAINER_LEN {
            match seq.next_element_seed(inner)? {
                Some(v) => items.push(v),
                None => return Ok(WireValue::Array(items)),
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_none() {
            return Ok(WireValue::Array(items));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(WireValue::Invalid(InvalidReason::TooManyElements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireValue, A::Error> {
        if self.depth == 0 {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(WireValue::Invalid(InvalidReason::TooDeep));
        }
        let inner = BoundedValue { depth: self.depth - 1 };
        // An event's fields: room for a page view's without growing (a
        // declared length is never trusted).
        let mut entries = Vec::with_capacity(8);
        let mut invalid = None;
        while let Some(key) = map.next_key_seed(BoundedKey)? {
            if invalid.is_some() || entries.len() >= MAX_CONTAINER_LEN {
                map.next_value::<IgnoredAny>()?;
                invalid.get_or_insert(InvalidReason::TooManyElements);
                continue;
            }
            match key {
                Some(key) => {
                    let value = map.next_value_seed(inner)?;
                    entries.push((key, value));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    invalid = Some(InvalidReason::TooLong);
                }
            }
        }
        Ok(match invalid {
            Some(reason) => WireValue::Invalid(reason),
            None => WireValue::Map(entries),
        })
    }
}

/// A map key: a string of at most [`MAX_STRING_BYTES`], `None` when longer.
struct BoundedKey;

impl<'de> DeserializeSeed<'de> for BoundedKey {
    type Value = Option<WireKey>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<WireKey>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for BoundedKey {
    type Value = Option<WireKey>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<WireKey>, E> {
        Ok((v.len() <= MAX_STRING_BYTES).then(|| wire_key(v)))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Option<WireKey>, E> {
        let s = std::str::from_utf8(v).map_err(|_| E::custom("map key is not UTF-8"))?;
        self.visit_str(s)
    }
}
