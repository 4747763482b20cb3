//! Sessions: a visitor's page views and custom events, grouped by the
//! SDK's session id or, without one, split after 30 minutes idle.
//!
//! A session with the SDK's id is one session however long its gaps, so its
//! numbers are a fold of its hits (earliest and latest hit, counts, the
//! earliest and latest page view): [`fold_sdk_sessions`] keeps that fold
//! per session and no hit, and a late hit moves it, until the session has
//! settled ([`SETTLED_MS`]). Without an SDK id the
//! key is (visitor, UTC day), split after 30 idle minutes: one `reduce` per
//! key keeps its sessions up to date, so a late hit joins, bridges or
//! splits the right session; a session ends at midnight, as in Google
//! Analytics, which bounds the work of one key to a day of one visitor's
//! hits.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use differential_dataflow::{AsCollection, Hashable, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use crate::buckets::Interval;
use crate::pageviews::PageDims;
use crate::retention::expire_at;
use crate::{Symbol, Time};

/// A gap longer than this ends a session (without an SDK session id).
pub const IDLE_MS: i64 = 30 * 60_000;
/// A session with the SDK's id whose latest hit is this far behind the
/// stream's clock ([`SessionHit::clock`]) has settled: its fold is dropped,
/// and a later hit with the same id starts a new session, as in Plausible's
/// session cache. The SDKs end a session after 30 idle minutes, and events
/// more than an hour late are rare: a late hit still finds its session's
/// fold when it is at most 90 minutes late and falls within the session, or
/// at most an hour late and 30 minutes after the latest hit held. Keeping
/// every fold until its day left the window held one per session of the
/// whole window (about 450 MB at 10M events, bench/README.md); three hours
/// held 110 MB of folds, two hours 63 MB.
pub const SETTLED_MS: i64 = 90 * 60_000;
/// Sessions are timed to the second: hits of one page in one second are
/// one value of the reduce, with a multiplicity, which keeps its input
/// small for busy visitors.
pub const RESOLUTION_MS: i64 = 1_000;

/// What the reduce keeps of a hit: its second and its page, if any.
pub type HitValue = (i64, Option<(Symbol, PageDims)>);

fn value_of(hit: &SessionHit) -> HitValue {
    (hit.ts - hit.ts.rem_euclid(RESOLUTION_MS), hit.page)
}

/// One page view or custom event, as sessions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionHit {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// A hash of the visitor's anonymous id.
    pub visitor: u64,
    /// A hash of the SDK's session id, if it sent one.
    pub session: Option<u64>,
    /// When the server received it, ms since the epoch.
    pub received: i64,
    /// The page of a page view, with its dimensions; `None` for a custom
    /// event.
    pub page: Option<(Symbol, PageDims)>,
}

/// The hits of one key form its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionKey {
    pub project: Symbol,
    pub owner: SessionOwner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SessionOwner {
    /// The SDK's session id: one session, however long its gaps.
    Sdk(u64),
    /// A visitor on one UTC day (its start, ms): split after [`IDLE_MS`].
    VisitorDay(u64, i64),
}

/// One session, as of the hits seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Session {
    pub start: i64,
    pub end: i64,
    pub pageviews: u32,
    pub custom_events: u32,
    pub entry: Symbol,
    pub exit: Symbol,
    /// The entry page view's dimensions (device, browser, OS, referrer,
    /// release): what sessions are filtered by.
    pub source: PageDims,
}

impl Session {
    /// Exactly one page view and no custom event.
    pub fn bounce(&self) -> bool {
        self.pageviews == 1 && self.custom_events == 0
    }

    /// From the first hit to the last; 0 for a bounce.
    pub fn duration_ms(&self) -> i64 {
        if self.bounce() { 0 } else { self.end - self.start }
    }
}

/// A session of a project; the read model counts it in its start's bucket
/// of every interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionRow {
    pub project: Symbol,
    pub session: Session,
}

impl SessionHit {
    /// What the hit reads of the stream's clock: its event time, or when it
    /// was received if that is earlier, so that a client clock ahead of
    /// time does not move the stream's clock. It comes from the event, not
    /// the wall clock, so a replay of the archive settles sessions as the
    /// live stream did.
    pub fn clock(&self) -> i64 {
        self.ts.min(self.received)
    }
}

fn key_of(hit: &SessionHit) -> SessionKey {
    let owner = match hit.session {
        Some(id) => SessionOwner::Sdk(id),
        None => SessionOwner::VisitorDay(hit.visitor, Interval::Day.bucket_of(hit.ts)),
    };
    SessionKey { project: hit.project, owner }
}

/// The sessions of one key's hits, sorted by time (with multiplicities).
/// Sessions without a page view are not sessions of a web site.
pub fn sessionize(owner: SessionOwner, hits: impl IntoIterator<Item = (HitValue, usize)>) -> Vec<Session> {
    let split = matches!(owner, SessionOwner::VisitorDay(..));
    let mut sessions: Vec<Session> = Vec::new();
    let mut current: Option<(Session, bool)> = None;
    for ((ts, page), count) in hits {
        if count == 0 {
            continue;
        }
        if let Some((session, _)) = &current
            && split
            && ts - session.end > IDLE_MS
        {
            sessions.extend(current.take().filter(|(_, has_page)| *has_page).map(|(s, _)| s));
        }
        let (session, has_page) = current.get_or_insert((
            Session {
                start: ts,
                end: ts,
                pageviews: 0,
                custom_events: 0,
                entry: 0,
                exit: 0,
                source: PageDims::default(),
            },
            false,
        ));
        session.end = ts;
        match page {
            Some((page, dims)) => {
                if !*has_page {
                    session.entry = page;
                    session.source = dims;
                    *has_page = true;
                }
                session.exit = page;
                session.pageviews += count as u32;
            }
            None => session.custom_events += count as u32,
        }
    }
    sessions.extend(current.filter(|(_, has_page)| *has_page).map(|(s, _)| s));
    sessions
}

/// When the day of `ts` leaves the window.
fn day_expiry(ts: i64, retention_ms: i64) -> i64 {
    Interval::Day.bucket_of(ts).saturating_add(Interval::Day.millis()).saturating_add(retention_ms)
}

/// The sessions of the hits. The read model drops a bucket's sessions whole
/// once it has left the window, so a session with the SDK's id is never
/// retracted for its age; a hit without one is kept until its day's bucket
/// ends plus `retention_ms` (for the `reduce`'s sake), and its sessions are
/// retracted with it.
pub fn session_views<'s>(
    hits: VecCollection<'s, Time, SessionHit>,
    retention_ms: i64,
) -> VecCollection<'s, Time, SessionRow> {
    let sdk = hits.clone().flat_map(|hit| hit.session.map(|id| ((hit.project, id), (value_of(&hit), hit.clock()))));
    let sdk_sessions = fold_sdk_sessions(sdk, retention_ms).map(|((project, _), session)| (project, session));
    let by_visitor_day =
        expire_at(hits.filter(|hit| hit.session.is_none()), move |hit| day_expiry(hit.ts, retention_ms));
    let visitor_day_sessions = by_visitor_day.map(|hit| (key_of(&hit), value_of(&hit))).reduce(|key, input, output| {
        let hits = input.iter().map(|(hit, diff)| (**hit, usize::try_from(*diff).unwrap_or(0)));
        output.extend(sessionize(key.owner, hits).into_iter().map(|s| (s, 1)));
    });
    let visitor_day_sessions = visitor_day_sessions.map(|(key, session)| (key.project, session));
    sdk_sessions.concat(visitor_day_sessions).map(|(project, session)| SessionRow { project, session })
}

/// What is kept of one session with the SDK's id: what [`sessionize`]
/// would make of its hits, folded as they come. A fold is kept per live
/// session, so its earliest and latest page view are held without an
/// `Option` (a session without a page view has `pageviews == 0` and an
/// entry after its exit): 72 bytes where two `Option`s took 88.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionFold {
    start: i64,
    end: i64,
    /// The earliest page view's time, or `i64::MAX` before the first.
    entry_ts: i64,
    /// The latest page view's time, or `i64::MIN` before the first.
    exit_ts: i64,
    pageviews: i32,
    custom_events: i32,
    /// The earliest page view's page and dimensions (in `HitValue` order).
    entry: (Symbol, PageDims),
    /// The latest page view's page (its dimensions are not needed).
    exit: Symbol,
}

impl SessionFold {
    fn new(ts: i64) -> SessionFold {
        let (entry, exit) = ((0, PageDims::default()), 0);
        SessionFold {
            start: ts,
            end: ts,
            entry_ts: i64::MAX,
            exit_ts: i64::MIN,
            pageviews: 0,
            custom_events: 0,
            entry,
            exit,
        }
    }

    /// Adds `count` hits; a negative count takes page views or custom events
    /// out, though not the extremes they set (the pipeline never retracts a
    /// hit: a session leaves whole, with its day).
    fn add(&mut self, (ts, page): HitValue, count: i64) {
        self.start = self.start.min(ts);
        self.end = self.end.max(ts);
        match page {
            Some((path, dims)) => {
                self.pageviews = add_count(self.pageviews, count);
                if (ts, path, dims) < (self.entry_ts, self.entry.0, self.entry.1) {
                    (self.entry_ts, self.entry) = (ts, (path, dims));
                }
                if (ts, path) > (self.exit_ts, self.exit) {
                    (self.exit_ts, self.exit) = (ts, path);
                }
            }
            None => self.custom_events = add_count(self.custom_events, count),
        }
    }

    /// The session, once it has a page view.
    fn session(&self) -> Option<Session> {
        (self.pageviews > 0 && self.entry_ts <= self.exit_ts).then(|| Session {
            start: self.start,
            end: self.end,
            pageviews: self.pageviews.unsigned_abs(),
            custom_events: self.custom_events.max(0).unsigned_abs(),
            entry: self.entry.0,
            exit: self.exit,
            source: self.entry.1,
        })
    }
}

/// A session with the SDK's id: its project and the id's hash. (The fold
/// keeps one per live session, keyed by this: 16 bytes where a
/// `SessionKey` takes 32.)
pub type SdkSession = (Symbol, u64);

/// `count + diff`, held to the range of an `i32`.
fn add_count(count: i32, diff: i64) -> i32 {
    i32::try_from(i64::from(count).saturating_add(diff)).unwrap_or(if diff < 0 { i32::MIN } else { i32::MAX })
}

/// Sessions with the SDK's id, each a fold of its hits; a hit comes with
/// its reading of the stream's clock ([`SessionHit::clock`]).
///
/// A `reduce` keeps every hit (about 170 bytes each with the retraction
/// waiting for its expiry) and re-reads them all when one arrives; a fold
/// keeps one `SessionFold` per session. The hits of a tick are folded once
/// the tick is complete, in tick order, so the output is what the fold of
/// all hits up to each tick makes: a changed session is retracted and
/// inserted again at that tick. After each tick the folds that have settled
/// ([`SETTLED_MS`] behind the latest clock reading this worker has seen) are
/// dropped without output: the session stays as it was. A hit of a day
/// already out of the window is not counted.
pub fn fold_sdk_sessions<'s>(
    hits: VecCollection<'s, Time, (SdkSession, (HitValue, i64))>,
    retention_ms: i64,
) -> VecCollection<'s, Time, (SdkSession, Session)> {
    type Hit = ((SdkSession, (HitValue, i64)), Time, isize);
    type Out = ((SdkSession, Session), Time, isize);
    type PendingHit = (SdkSession, (HitValue, i64), isize);
    let exchange = Exchange::new(|((key, _), _, _): &Hit| key.hashed());
    hits.inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(exchange, "FoldSdkSessions", move |_, _| {
            let mut folds: HashMap<SdkSession, SessionFold> = HashMap::new();
            // Hits by tick, until the tick is complete.
            let mut pending: BTreeMap<Time, (Capability<Time>, Vec<PendingHit>)> = BTreeMap::new();
            let mut clock = i64::MIN;
            // Sessions by the minute of their latest hit, to settle in that
            // order. A session whose latest hit moved on is listed again
            // under the later minute, and passed over under the earlier one.
            let mut by_latest: BTreeMap<i64, Vec<SdkSession>> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for ((key, hit), time, diff) in data.drain(..) {
                        let (_, held) = pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, output.output_index()), Vec::new()));
                        held.push((key, hit, diff));
                    }
                });
                let reached = frontier.frontier().first().copied().unwrap_or(Time::MAX);
                while let Some(entry) = pending.first_entry()
                    && *entry.key() < reached
                {
                    let (t, (cap, hits)) = entry.remove_entry();
                    let now = i64::try_from(t).unwrap_or(i64::MAX);
                    let mut before: HashMap<SdkSession, Option<Session>> = HashMap::new();
                    for (key, (hit, reading), diff) in hits {
                        clock = clock.max(reading);
                        if day_expiry(hit.0, retention_ms) <= now {
                            continue;
                        }
                        let (fold, created) = match folds.entry(key) {
                            Entry::Occupied(held) => (held.into_mut(), false),
                            Entry::Vacant(free) => (free.insert(SessionFold::new(hit.0)), true),
                        };
                        before.entry(key).or_insert_with(|| fold.session());
                        let latest_before = Interval::Minute.bucket_of(fold.end);
                        fold.add(hit, diff as i64);
                        let latest = Interval::Minute.bucket_of(fold.end);
                        if created || latest != latest_before {
                            by_latest.entry(latest).or_default().push(key);
                        }
                    }
                    let mut session = output.session(&cap);
                    for (key, old) in before {
                        let new = folds.get(&key).and_then(SessionFold::session);
                        if old != new {
                            session.give_iterator(
                                old.map(|s| ((key, s), t, -1)).into_iter().chain(new.map(|s| ((key, s), t, 1))),
                            );
                        }
                    }
                    let settled_before = clock.saturating_sub(SETTLED_MS);
                    while let Some(minute) = by_latest.first_entry()
                        && *minute.key() + Interval::Minute.millis() <= settled_before
                    {
                        for key in minute.remove() {
                            if folds.get(&key).is_some_and(|f| f.end < settled_before) {
                                folds.remove(&key);
                            }
                        }
                    }
                    // A table never shrinks on its own: after a burst (a
                    // replay of the archive, a busy hour) it would keep the
                    // room of its most folds.
                    if folds.capacity() > 4 * folds.len() + 1_024 {
                        folds.shrink_to(2 * folds.len());
                    }
                }
            }
        })
        .as_collection()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    type View = BTreeMap<SessionRow, isize>;

    /// The obviously correct batch version: hits grouped by key, sorted,
    /// walked once.
    fn reference(hits: &[SessionHit]) -> View {
        let mut by_key: BTreeMap<SessionKey, Vec<HitValue>> = BTreeMap::new();
        for hit in hits {
            by_key.entry(key_of(hit)).or_default().push(value_of(hit));
        }
        let mut view = View::new();
        for (key, mut hits) in by_key {
            hits.sort();
            for session in sessionize(key.owner, hits.into_iter().map(|h| (h, 1))) {
                *view.entry(SessionRow { project: key.project, session }).or_default() += 1;
            }
        }
        view
    }

    fn run(batches: Vec<Vec<(SessionHit, isize)>>, workers: usize) -> View {
        crate::testing::run(workers, batches, 10, i64::MAX / 4, session_views)
    }

    fn hit(ts_min: i64, visitor: u64, page: Option<Symbol>) -> SessionHit {
        let page = page.map(|p| (p, PageDims { referrer: p, ..PageDims::default() }));
        let ts = 1_700_000_000_000 / 86_400_000 * 86_400_000 + ts_min * 60_000;
        SessionHit { project: 0, ts, visitor, session: None, received: ts, page }
    }

    fn sessions_of(view: &View) -> Vec<Session> {
        view.keys().map(|row| row.session).collect()
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let random_hit = |rng: &mut StdRng| SessionHit {
                project: rng.random_range(0..2),
                ts: 1_700_000_000_000 + rng.random_range(0..36 * 3_600_000),
                visitor: rng.random_range(0..6),
                session: rng.random_bool(0.2).then(|| rng.random_range(0..3)),
                // Received before any of them happened: the stream's clock
                // stays put, no session settles, and the folds must match
                // the batch reference however far apart their hits are.
                received: 1_700_000_000_000,
                page: rng.random_bool(0.8).then(|| {
                    let dims = PageDims { referrer: rng.random_range(0..2), ..PageDims::default() };
                    (rng.random_range(0..4), dims)
                }),
            };
            let first: Vec<SessionHit> = (0..300).map(|_| random_hit(&mut rng)).collect();
            let second: Vec<SessionHit> = (0..200).map(|_| random_hit(&mut rng)).collect();
            // Hits are only ever retracted without an SDK id (a fold keeps
            // no hits to take back).
            let retracted: Vec<SessionHit> =
                first.iter().filter(|h| rng.random_bool(0.3) && h.session.is_none()).cloned().collect();
            let mut kept = first.clone();
            for r in &retracted {
                let at = kept.iter().position(|k| k == r).unwrap();
                kept.remove(at);
            }
            kept.extend(second.iter().cloned());
            let batches = vec![
                first.into_iter().map(|h| (h, 1)).collect(),
                second.into_iter().map(|h| (h, 1)).collect(),
                retracted.into_iter().map(|h| (h, -1)).collect(),
            ];
            for workers in [1, 2] {
                assert_eq!(run(batches.clone(), workers), reference(&kept), "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn an_idle_gap_splits_and_a_late_event_bridges_it() {
        let early = vec![(hit(0, 1, Some(1)), 1), (hit(10, 1, Some(2)), 1), (hit(50, 1, Some(3)), 1)];
        let split = sessions_of(&run(vec![early.clone()], 1));
        assert_eq!(split.len(), 2, "40 idle minutes split: {split:?}");
        assert_eq!((split[0].pageviews, split[0].entry, split[0].exit), (2, 1, 2));
        assert_eq!(split[0].source.referrer, 1, "the entry page view's dimensions");
        assert!(split[1].bounce() && split[1].duration_ms() == 0);
        // A late page view at minute 30 arrives: the gaps are now 20 minutes.
        let joined = sessions_of(&run(vec![early, vec![(hit(30, 1, Some(4)), 1)]], 2));
        assert_eq!(joined.len(), 1, "{joined:?}");
        assert_eq!((joined[0].pageviews, joined[0].entry, joined[0].exit), (4, 1, 3));
        assert_eq!(joined[0].duration_ms(), 50 * 60_000);
    }

    #[test]
    fn one_page_view_with_a_custom_event_is_not_a_bounce() {
        let view = run(vec![vec![(hit(0, 1, Some(1)), 1), (hit(2, 1, None), 1)]], 1);
        let sessions = sessions_of(&view);
        assert_eq!(sessions.len(), 1);
        assert!(!sessions[0].bounce());
        assert_eq!(sessions[0].duration_ms(), 2 * 60_000);
        // Events alone make no session.
        assert!(run(vec![vec![(hit(0, 2, None), 1)]], 1).is_empty());
    }

    fn sdk(id: u64, ts_min: i64, page: Option<Symbol>) -> SessionHit {
        SessionHit { session: Some(id), ..hit(ts_min, 1, page) }
    }

    #[test]
    fn a_fold_is_72_bytes() {
        assert_eq!(std::mem::size_of::<SessionFold>(), 72);
    }

    #[test]
    fn an_sdk_session_folds_late_hits() {
        let batches = vec![
            vec![(sdk(9, 30, Some(2)), 1), (sdk(9, 40, None), 1)],
            vec![(sdk(9, 10, Some(1)), 1)],
            vec![(sdk(9, 50, Some(3)), 1), (sdk(9, 5, None), 1), (sdk(9, 10, Some(1)), 1)],
        ];
        let hits: Vec<SessionHit> = batches.iter().flatten().map(|(h, _)| *h).collect();
        let sessions = sessions_of(&run(batches.clone(), 2));
        assert_eq!(sessions_of(&reference(&hits)), sessions);
        assert_eq!(sessions.len(), 1);
        let s = sessions[0];
        assert_eq!((s.pageviews, s.custom_events, s.entry, s.exit), (4, 2, 1, 3));
        assert_eq!(s.duration_ms(), 45 * 60_000, "from the late custom event at 5 to the page view at 50");
    }

    #[test]
    fn an_sdk_session_settles_once_the_stream_has_moved_on() {
        let settled_min = SETTLED_MS / 60_000;
        let early = vec![(sdk(9, 0, Some(1)), 1), (sdk(9, 10, Some(2)), 1)];
        // Another session's hit moves the clock past session 9's latest hit
        // by more than `SETTLED_MS`; a hit of session 9 after that is a new
        // session, and the one before stays as it was.
        let moved_on = vec![(sdk(8, 10 + settled_min + 1, Some(4)), 1)];
        let late = vec![(sdk(9, 20, Some(3)), 1)];
        let mut sessions = sessions_of(&run(vec![early.clone(), moved_on.clone(), late.clone()], 1));
        sessions.sort_by_key(|s| (s.start, s.pageviews));
        let shape: Vec<_> = sessions.iter().map(|s| (s.pageviews, s.entry, s.exit)).collect();
        assert_eq!(shape, [(2, 1, 2), (1, 3, 3), (1, 4, 4)], "{sessions:?}");
        // Within a tick, hits are folded before anything settles.
        let together = vec![moved_on[0], late[0]];
        let sessions = sessions_of(&run(vec![early.clone(), together], 2));
        assert!(sessions.iter().any(|s| (s.pageviews, s.entry, s.exit) == (3, 1, 3)), "{sessions:?}");
        assert_eq!(sessions.len(), 2);
        // A hit received before its event time (a client clock ahead) reads
        // the clock as when it was received: nothing settles.
        let ahead = vec![(SessionHit { received: sdk(9, 15, None).ts, ..moved_on[0].0 }, 1)];
        let sessions = sessions_of(&run(vec![early, ahead, late], 2));
        assert!(sessions.iter().any(|s| (s.pageviews, s.entry, s.exit) == (3, 1, 3)), "{sessions:?}");
        assert_eq!(sessions.len(), 2);
    }

    #[test]
    fn an_sdk_session_id_groups_across_idle_gaps_and_visitors() {
        let hits = vec![(sdk(7, 0, Some(1)), 1), (SessionHit { visitor: 2, ..sdk(7, 120, Some(2)) }, 1)];
        let sessions = sessions_of(&run(vec![hits], 1));
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].pageviews, 2);
    }
}
