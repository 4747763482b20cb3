//! From accepted events to the rows each dataflow input takes.

use sightline_model::{Event, EventKind, referrer_domain};
use sightline_operators::vitals::scale;
use sightline_operators::{ErrorRow, EventDims, EventRow, PageDims, PageviewRow, SessionHit, Symbol, VitalRow};

use crate::interner::{BatchNames, PropSets};

/// A stable 64-bit id for a visitor's anonymous id (or a session id): XXH3,
/// the same in every process, which is all the views need (they are rebuilt
/// from the archive on start); the visitor sketches take its bits as they
/// are.
pub fn visitor_hash(anonymous_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(anonymous_id.as_bytes())
}

/// The symbols of the strings that an event's rows share: its project,
/// path, release and User-Agent's device, browser and OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSymbols {
    pub project: Symbol,
    pub path: Symbol,
    pub release: Symbol,
    pub device: Symbol,
    pub browser: Symbol,
    pub os: Symbol,
}

impl EventSymbols {
    /// The symbols of `event`'s strings, interning only those that differ
    /// from the `previous` event's: a batch comes from one SDK, so its
    /// project, release and User-Agent are mostly the same throughout
    /// (interning them again for every row was a third of the ingest
    /// threads' time in `Pipeline::push`, perf at 210k events/s).
    pub fn of(event: &Event, previous: Option<(&Event, EventSymbols)>, names: &mut BatchNames) -> EventSymbols {
        match previous {
            Some((before, symbols))
                if before.project_id == event.project_id
                    && before.release == event.release
                    && before.device == event.device
                    && before.browser == event.browser
                    && before.os == event.os =>
            {
                let path = if before.path == event.path { symbols.path } else { names.intern(&event.path) };
                EventSymbols { path, ..symbols }
            }
            _ => EventSymbols {
                project: names.intern(&event.project_id),
                path: names.intern(&event.path),
                release: names.intern(event.release.as_deref().unwrap_or("")),
                device: names.intern(event.device.as_str()),
                browser: names.intern(&event.browser),
                os: names.intern(&event.os),
            },
        }
    }
}

/// The page view row of an event, if it is a page view.
pub fn pageview_row(event: &Event, symbols: &EventSymbols, names: &mut BatchNames) -> Option<PageviewRow> {
    match &event.kind {
        EventKind::Pageview { referrer, .. } => Some(PageviewRow {
            project: symbols.project,
            ts: event.ts,
            path: symbols.path,
            visitor: visitor_hash(&event.anonymous_id),
            dims: PageDims {
                device: symbols.device,
                browser: symbols.browser,
                os: symbols.os,
                referrer: names.intern(&referrer_domain(referrer.as_deref(), event.url.as_deref())),
                release: symbols.release,
            },
        }),
        _ => None,
    }
}

/// The error row of an event, if it is an error.
pub fn error_row(event: &Event, symbols: &EventSymbols, names: &mut BatchNames) -> Option<ErrorRow> {
    match &event.kind {
        EventKind::Error { group, .. } => Some(ErrorRow {
            project: symbols.project,
            group: names.intern(group.as_ref().map_or("ungrouped", |g| g.fingerprint.as_str())),
            ts: event.ts,
            visitor: visitor_hash(&event.anonymous_id),
            release: symbols.release,
            path: symbols.path,
            device: symbols.device,
        }),
        _ => None,
    }
}

/// The vital row of an event, if it is a web vital measurement.
pub fn vital_row(event: &Event, symbols: &EventSymbols) -> Option<VitalRow> {
    match &event.kind {
        EventKind::Vital { name, value } => Some(VitalRow {
            project: symbols.project,
            ts: event.ts,
            metric: *name,
            path: symbols.path,
            device: symbols.device,
            browser: symbols.browser,
            release: symbols.release,
            value: scale(*name, *value),
        }),
        _ => None,
    }
}

/// The custom event row of an event, if it is one.
pub fn event_row(
    event: &Event,
    symbols: &EventSymbols,
    names: &mut BatchNames,
    prop_sets: &PropSets,
) -> Option<EventRow> {
    match &event.kind {
        EventKind::Event { name, props } => Some(EventRow {
            project: symbols.project,
            ts: event.ts,
            name: names.intern(name),
            dims: EventDims {
                path: symbols.path,
                device: symbols.device,
                browser: symbols.browser,
                release: symbols.release,
                props: prop_sets.intern(names, props),
            },
        }),
        _ => None,
    }
}

/// The session hit of a page view (given its row) or custom event.
pub fn session_hit(event: &Event, symbols: &EventSymbols, pageview: Option<&PageviewRow>) -> Option<SessionHit> {
    let page = match (&event.kind, pageview) {
        (EventKind::Pageview { .. }, Some(row)) => Some((row.path, row.dims)),
        (EventKind::Event { .. }, _) => None,
        _ => return None,
    };
    Some(SessionHit {
        project: symbols.project,
        ts: event.ts,
        visitor: visitor_hash(&event.anonymous_id),
        session: event.session_id.as_deref().map(visitor_hash),
        received: event.received_at,
        page,
    })
}

#[cfg(test)]
mod tests {
    use sightline_model::DeviceClass;

    use super::*;
    use crate::interner::Interner;

    fn event(project: &str, path: &str, release: Option<&str>, browser: &str) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            project_id: project.into(),
            received_at: 0,
            ts: 0,
            client_ts: None,
            anonymous_id: "v".into(),
            session_id: None,
            url: None,
            path: path.into(),
            release: release.map(str::to_owned),
            device: DeviceClass::Desktop,
            browser: browser.into(),
            os: "Linux".into(),
            kind: EventKind::Pageview { referrer: None, title: None },
        }
    }

    /// Symbols carried over from the previous event are the ones interning
    /// would give: each string that changes from one event to the next is
    /// interned again.
    #[test]
    fn symbols_carried_over_are_those_interning_gives() {
        let events = [
            event("p1", "/a", Some("r1"), "Chrome"),
            event("p1", "/a", Some("r1"), "Chrome"),
            event("p1", "/b", Some("r1"), "Chrome"),
            event("p1", "/b", Some("r2"), "Chrome"),
            event("p1", "/b", None, "Chrome"),
            event("p1", "/b", None, "Firefox"),
            event("p2", "/b", None, "Firefox"),
            event("p2", "/a", Some("r1"), "Chrome"),
        ];
        let interner = Interner::default();
        let mut names = interner.batch();
        let mut previous = None;
        for event in &events {
            let symbols = EventSymbols::of(event, previous, &mut names);
            previous = Some((event, symbols));
            let alone = EventSymbols::of(event, None, &mut names);
            assert_eq!(symbols, alone, "{} {} {:?} {}", event.project_id, event.path, event.release, event.browser);
        }
        drop(names);
        let symbol = |name| interner.lookup(name).unwrap();
        let last = previous.unwrap().1;
        assert_eq!(
            (last.project, last.path, last.release, last.browser),
            (symbol("p2"), symbol("/a"), symbol("r1"), symbol("Chrome"))
        );
    }
}
