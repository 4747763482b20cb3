//! The unit the bus carries: one accepted batch of one project.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;

/// One accepted batch, as published on the bus and stored in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per accepted request; the NATS message id, so a retried
    /// publish is stored once.
    pub batch_id: Uuid,
    pub project_id: String,
    pub received_at: i64,
    pub events: Vec<Event>,
}

/// Room reserved per event when encoding: the load generator's mix takes
/// 213 bytes an event in the archive, on average.
const ENCODED_EVENT_BYTES: usize = 256;

/// Why bytes from the bus or archive are not an envelope.
#[derive(Debug, thiserror::Error)]
#[error("not a Sightline envelope: {0}")]
pub struct EnvelopeError(#[from] rmp_serde::decode::Error);

impl Envelope {
    /// The MessagePack encoding used on the bus and in the archive.
    pub fn encode(&self) -> Vec<u8> {
        // Room for a typical event from the start: grown from empty, the
        // buffer's reallocations were a quarter of encoding (callgrind).
        let mut bytes = Vec::with_capacity(64 + ENCODED_EVENT_BYTES * self.events.len());
        rmp_serde::encode::write(&mut bytes, self).expect("an envelope always serializes");
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::event::{DeviceClass, EventKind, Frame, GroupRef, MinifiedLocation, PropValue, VitalName};

    fn opt_str() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(".{0,20}")
    }

    fn kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            (opt_str(), opt_str()).prop_map(|(referrer, title)| EventKind::Pageview { referrer, title }),
            (
                ".{1,10}",
                proptest::collection::btree_map(
                    "[a-z]{1,8}",
                    prop_oneof![
                        any::<bool>().prop_map(PropValue::Bool),
                        (-1e9f64..1e9).prop_map(PropValue::Num),
                        ".{0,10}".prop_map(PropValue::Str)
                    ],
                    0..5,
                )
            )
                .prop_map(|(name, props): (String, BTreeMap<_, _>)| EventKind::Event { name, props }),
            (
                opt_str(),
                opt_str(),
                opt_str(),
                proptest::collection::vec((opt_str(), opt_str(), any::<Option<u32>>(), any::<Option<u32>>()), 0..4),
                proptest::option::of(proptest::collection::vec(".{0,5}", 1..3))
            )
                .prop_map(|(error_type, message, stack, frames, fingerprint)| EventKind::Error {
                    error_type,
                    message,
                    stack,
                    frames: frames
                        .into_iter()
                        .map(|(function, file, line, column)| Frame {
                            function,
                            file,
                            line,
                            column,
                            in_app: line.is_some(),
                            minified: line.map(|line| MinifiedLocation {
                                function: None,
                                file: "app.min.js".into(),
                                line,
                                column: 1,
                            }),
                        })
                        .collect(),
                    group: fingerprint.as_ref().map(|f: &Vec<String>| GroupRef {
                        fingerprint: f.concat(),
                        version: "v1".into(),
                        basis: "custom".into(),
                    }),
                    fingerprint,
                }),
            (proptest::sample::select(VitalName::ALL.to_vec()), 0f64..1e6)
                .prop_map(|(name, value)| EventKind::Vital { name, value }),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        (any::<u128>(), any::<i64>(), any::<Option<i64>>(), ".{0,12}", opt_str(), opt_str(), ".{0,12}", kind())
            .prop_map(|(id, ts, client_ts, anonymous_id, session_id, url, path, kind)| Event {
                id: Uuid::from_u128(id),
                project_id: "p1".into(),
                received_at: ts / 2,
                ts,
                client_ts,
                anonymous_id,
                session_id,
                url,
                path,
                release: None,
                device: DeviceClass::Mobile,
                browser: "Firefox".into(),
                os: "Linux".into(),
                kind,
            })
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(events in proptest::collection::vec(event(), 0..8), batch in any::<u128>()) {
            let env = Envelope { batch_id: Uuid::from_u128(batch), project_id: "p1".into(), received_at: 7, events };
            prop_assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
        }

        #[test]
        fn garbage_is_never_an_envelope_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Envelope::decode(&bytes);
        }
    }
}
