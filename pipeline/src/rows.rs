//! From accepted events to the rows each dataflow input takes.

use sightline_model::{Event, EventKind, referrer_domain};
use sightline_operators::vitals::scale;
use sightline_operators::{ErrorRow, EventDims, EventRow, PageDims, PageviewRow, SessionHit, VitalRow};

use crate::interner::{BatchNames, PropSets};

/// A stable 64-bit id for a visitor's anonymous id (or a session id): XXH3,
/// the same in every process, which is all the views need (they are rebuilt
/// from the archive on start); the visitor sketches take its bits as they
/// are.
pub fn visitor_hash(anonymous_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(anonymous_id.as_bytes())
}

/// The page view row of an event, if it is a page view.
pub fn pageview_row(event: &Event, names: &mut BatchNames) -> Option<PageviewRow> {
    match &event.kind {
        EventKind::Pageview { referrer, .. } => Some(PageviewRow {
            project: names.intern(&event.project_id),
            ts: event.ts,
            path: names.intern(&event.path),
            visitor: visitor_hash(&event.anonymous_id),
            dims: PageDims {
                device: names.intern(event.device.as_str()),
                browser: names.intern(&event.browser),
                os: names.intern(&event.os),
                referrer: names.intern(&referrer_domain(referrer.as_deref(), event.url.as_deref())),
                release: names.intern(event.release.as_deref().unwrap_or("")),
            },
        }),
        _ => None,
    }
}

/// The error row of an event, if it is an error.
pub fn error_row(event: &Event, names: &mut BatchNames) -> Option<ErrorRow> {
    match &event.kind {
        EventKind::Error { group, .. } => Some(ErrorRow {
            project: names.intern(&event.project_id),
            group: names.intern(group.as_ref().map_or("ungrouped", |g| g.fingerprint.as_str())),
            ts: event.ts,
            visitor: visitor_hash(&event.anonymous_id),
            release: names.intern(event.release.as_deref().unwrap_or("")),
            path: names.intern(&event.path),
            device: names.intern(event.device.as_str()),
        }),
        _ => None,
    }
}

/// The vital row of an event, if it is a web vital measurement.
pub fn vital_row(event: &Event, names: &mut BatchNames) -> Option<VitalRow> {
    match &event.kind {
        EventKind::Vital { name, value } => Some(VitalRow {
            project: names.intern(&event.project_id),
            ts: event.ts,
            metric: *name,
            path: names.intern(&event.path),
            device: names.intern(event.device.as_str()),
            browser: names.intern(&event.browser),
            release: names.intern(event.release.as_deref().unwrap_or("")),
            value: scale(*name, *value),
        }),
        _ => None,
    }
}

/// The custom event row of an event, if it is one.
pub fn event_row(event: &Event, names: &mut BatchNames, prop_sets: &PropSets) -> Option<EventRow> {
    match &event.kind {
        EventKind::Event { name, props } => Some(EventRow {
            project: names.intern(&event.project_id),
            ts: event.ts,
            name: names.intern(name),
            dims: EventDims {
                path: names.intern(&event.path),
                device: names.intern(event.device.as_str()),
                browser: names.intern(&event.browser),
                release: names.intern(event.release.as_deref().unwrap_or("")),
                props: prop_sets.intern(names, props),
            },
        }),
        _ => None,
    }
}

/// The session hit of a page view (given its row) or custom event.
pub fn session_hit(event: &Event, names: &mut BatchNames, pageview: Option<&PageviewRow>) -> Option<SessionHit> {
    let page = match (&event.kind, pageview) {
        (EventKind::Pageview { .. }, Some(row)) => Some((row.path, row.dims)),
        (EventKind::Event { .. }, _) => None,
        _ => return None,
    };
    Some(SessionHit {
        project: names.intern(&event.project_id),
        ts: event.ts,
        visitor: visitor_hash(&event.anonymous_id),
        session: event.session_id.as_deref().map(visitor_hash),
        received: event.received_at,
        page,
    })
}
