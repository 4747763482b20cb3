//! Sightline's event model: what an ingested event is, how a request body
//! becomes a batch of them, what is rejected and why.
//!
//! The path of a body through this crate:
//! `body::decode_body` (size caps, gzip, JSON or MessagePack into bounded
//! [`wire::WireValue`]s) → `validate::validate_event` (per-event checks,
//! producing a [`event::ClientEvent`]) → `enrich::enrich` (server time, path,
//! user agent, id) → [`event::Event`], shipped on the bus in an
//! [`envelope::Envelope`].

pub mod body;
pub mod enrich;
pub mod envelope;
pub mod event;
pub mod limits;
pub mod validate;
pub mod wire;

pub use body::{BodyError, DecodedBatch, Encoding, Format, decode_body};
pub use enrich::{IngestContext, UserAgentCache, UserAgentInfo, enrich, referrer_domain};
pub use envelope::Envelope;
pub use event::{
    ClientEvent, DeviceClass, Event, EventKind, Frame, GroupRef, MinifiedLocation, PropValue, SourceContext, VitalName,
};
pub use validate::{Rejection, validate_event};
