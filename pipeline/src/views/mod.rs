//! The read model: view state the query API reads without touching the
//! workers, updated once per finished tick from consolidated dataflow output,
//! and the change feed of those updates.

pub mod alerts;
pub mod anomalies;
mod cells;
pub mod errors;
pub mod events;
pub mod pageviews;
pub mod sessions;
mod sketch;
pub mod vitals;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sightline_model::Event;
use sightline_operators::{
    AnomalyPoint, ErrorUpdate, EventRow, Interval, PageviewRow, RuleSample, Series, SessionRow, SignalRow, Symbol,
    Time, VitalUpdate,
};
use tokio::sync::{broadcast, watch};

pub use alerts::RuleWindow;
pub use errors::{
    ErrorCountPoint, ErrorEventView, ErrorGroupDetail, ErrorGroupSummary, ErrorRatePoint, ErrorsAnswer, ErrorsQuery,
    EventFrame, LATEST_EVENTS, NewErrorGroup, interval_for,
};
pub use events::{BreakdownValue, EventFilters, EventNameCount, EventsAnswer, EventsPoint, EventsQuery};
pub use pageviews::{
    BreakdownRow, PageDimension, PageFilters, PageviewDelta, PageviewsAnswer, PageviewsPoint, PageviewsQuery,
    PageviewsTotal,
};
pub use sessions::{SessionsQuery, SessionsSummary};
pub use vitals::{PageVitals, VitalsAnswer, VitalsByPage, VitalsQuery};

use crate::interner::{Interner, PropSets};

/// The names behind the symbols.
pub(crate) type Names = Interner;

/// The read model's hash maps of cells: keys are small integers and
/// symbols, which SipHash (std's default) hashed at several % of the
/// pipeline's time (perf).
type CellMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// "Current visitors" were seen this recently.
pub const CURRENT_VISITORS_MS: i64 = 5 * 60_000;

/// The most buckets one answer's series may have.
pub const MAX_SERIES_POINTS: i64 = 10_000;

/// Whether a bucket has left the window by the tick `through`: it is kept
/// `retention_ms` after it ends.
fn expired(interval: Interval, bucket: i64, through: Time, retention_ms: i64) -> bool {
    let leaves = bucket.saturating_add(interval.millis()).saturating_add(retention_ms);
    leaves <= i64::try_from(through).unwrap_or(i64::MAX)
}

/// A bucket is sealed ([`cells`]) once its project's latest event time is
/// this far past its end: later events are late ones.
const SEAL_AFTER_MS: i64 = 5 * 60_000;

/// Where a project's read model stands in sealing its buckets.
#[derive(Debug, Default)]
struct Sealing {
    /// The latest event time seen, but never past the tick it came in (a
    /// client clock ahead of time does not seal what is still open).
    latest: i64,
    /// Per interval, the start from which buckets are not sealed yet.
    unsealed_from: [i64; KEPT],
}

impl Sealing {
    fn note(&mut self, ts: i64, through: Time) {
        self.latest = self.latest.max(ts.min(i64::try_from(through).unwrap_or(i64::MAX)));
    }

    /// Calls `seal` with each bucket (per interval, by start) that ended
    /// long enough before the latest event, once, and its interval.
    fn seal_ended<B>(
        &mut self,
        by_interval: &mut [std::collections::BTreeMap<i64, B>; KEPT],
        mut seal: impl FnMut(Interval, &mut B),
    ) {
        for ((buckets, interval), from) in by_interval.iter_mut().zip(Interval::KEPT).zip(&mut self.unsealed_from) {
            seal_ended(buckets, interval.millis(), from, self.latest, &mut |bucket| seal(interval, bucket));
        }
    }
}

/// Calls `seal` with each bucket of `width` from `unsealed_from` on that
/// ended `SEAL_AFTER_MS` before `latest`, and moves `unsealed_from` past it.
fn seal_ended<B>(
    buckets: &mut std::collections::BTreeMap<i64, B>,
    width: i64,
    unsealed_from: &mut i64,
    latest: i64,
    seal: &mut impl FnMut(&mut B),
) {
    for (start, bucket) in buckets.range_mut(*unsealed_from..) {
        let end = start.saturating_add(width);
        if end.saturating_add(SEAL_AFTER_MS) > latest {
            break;
        }
        seal(bucket);
        *unsealed_from = end;
    }
}

/// `count + diff` for the read model's 32-bit counts, held to their range
/// (a cell counts far fewer than 2^31 of anything).
fn add_i32(count: i32, diff: i64) -> i32 {
    i32::try_from(i64::from(count).saturating_add(diff)).unwrap_or(if diff < 0 { i32::MIN } else { i32::MAX })
}

/// Calls `update` with each interval whose bucket of `ts` is still in the
/// window, that bucket's start and the interval's buckets (by start): how a
/// read model adds a row to its bucket of every interval.
fn in_window_buckets<B>(
    by_interval: &mut [std::collections::BTreeMap<i64, B>; KEPT],
    ts: i64,
    (through, retention_ms): (Time, i64),
    mut update: impl FnMut(Interval, i64, &mut std::collections::BTreeMap<i64, B>),
) {
    for (buckets, interval) in by_interval.iter_mut().zip(Interval::KEPT) {
        let start = interval.bucket_of(ts);
        if !expired(interval, start, through, retention_ms) {
            update(interval, start, buckets);
        }
    }
}

/// Drops the buckets (per interval, by start) that left the window by the
/// tick `through`; whether any did.
fn drop_expired<B>(
    by_interval: &mut [std::collections::BTreeMap<i64, B>; KEPT],
    through: Time,
    retention_ms: i64,
) -> bool {
    let mut dropped = false;
    for (buckets, interval) in by_interval.iter_mut().zip(Interval::KEPT) {
        while let Some(oldest) = buckets.first_entry() {
            if !expired(interval, *oldest.key(), through, retention_ms) {
                break;
            }
            oldest.remove();
            dropped = true;
        }
    }
    dropped
}

/// How many intervals the read models keep buckets of ([`Interval::KEPT`]).
const KEPT: usize = Interval::KEPT.len();

/// Where a kept interval's buckets are in a read model's `by_interval`.
fn interval_index(interval: Interval) -> usize {
    Interval::KEPT.iter().position(|kept| *kept == interval).expect("buckets of a kept interval ([`Interval::kept`])")
}

/// One output record of the dataflow, for any view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub enum ViewUpdate {
    Pageview(PageviewRow),
    Error(ErrorUpdate),
    Vital(VitalUpdate),
    Event(EventRow),
    Session(SessionRow),
    Rule(RuleSample),
    Anomaly(AnomalyPoint),
}

/// A tick's updates per read model, in the order given.
#[derive(Default)]
struct ByModel<'a> {
    pageviews: Vec<(&'a PageviewRow, i64)>,
    errors: Vec<(&'a ErrorUpdate, i64)>,
    vitals: Vec<(&'a VitalUpdate, i64)>,
    events: Vec<(&'a EventRow, i64)>,
    sessions: Vec<(&'a SessionRow, i64)>,
    rules: Vec<(&'a RuleSample, i64)>,
    anomalies: Vec<(&'a AnomalyPoint, i64)>,
}

impl<'a> ByModel<'a> {
    fn split(updates: impl Iterator<Item = &'a (ViewUpdate, isize)>) -> ByModel<'a> {
        let mut by = ByModel::default();
        for (update, diff) in updates {
            let diff = *diff as i64;
            match update {
                ViewUpdate::Pageview(u) => by.pageviews.push((u, diff)),
                ViewUpdate::Error(u) => by.errors.push((u, diff)),
                ViewUpdate::Vital(u) => by.vitals.push((u, diff)),
                ViewUpdate::Event(row) => by.events.push((row, diff)),
                ViewUpdate::Session(u) => by.sessions.push((u, diff)),
                ViewUpdate::Rule(sample) => by.rules.push((sample, diff)),
                ViewUpdate::Anomaly(point) => by.anomalies.push((point, diff)),
            }
        }
        by
    }
}

impl ViewUpdate {
    fn project(&self) -> Symbol {
        match self {
            ViewUpdate::Pageview(row) => row.project,
            ViewUpdate::Error(ErrorUpdate::Event(cell, _)) => cell.project,
            ViewUpdate::Error(ErrorUpdate::Seen { project, .. }) => *project,
            ViewUpdate::Vital(update) => update.row.project,
            ViewUpdate::Event(row) => row.project,
            ViewUpdate::Session(update) => update.project,
            ViewUpdate::Rule(sample) => sample.project,
            ViewUpdate::Anomaly(point) => point.project,
        }
    }
}

/// What changed in one view of one project in one tick: what `live` streams,
/// as an SSE event named after `view`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "view", content = "changes", rename_all = "snake_case")]
pub enum ChangeBody {
    /// Per minute bucket and path: how page views and visitors moved.
    Pageviews(Vec<PageviewDelta>),
    /// Error groups seen for the first time.
    ErrorGroups(Vec<NewErrorGroup>),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViewChange {
    pub project_id: String,
    /// The tick (ms since the epoch) the change became final at.
    pub tick: Time,
    #[serde(flatten)]
    pub body: ChangeBody,
}

impl ViewChange {
    /// The view's name, also the SSE event name.
    pub fn view(&self) -> &'static str {
        match self.body {
            ChangeBody::Pageviews(_) => "pageviews",
            ChangeBody::ErrorGroups(_) => "error_groups",
        }
    }
}

/// The views, shared by the pipeline's sink (writer) and the HTTP handlers
/// (readers).
pub struct ViewStore {
    names: Interner,
    prop_sets: PropSets,
    pageviews: RwLock<pageviews::PageviewViews>,
    errors: RwLock<errors::ErrorViews>,
    vitals: RwLock<vitals::VitalViews>,
    events: RwLock<events::EventViews>,
    sessions: RwLock<sessions::SessionViews>,
    alerts: RwLock<alerts::AlertViews>,
    anomalies: RwLock<anomalies::AnomalyViews>,
    /// The last tick that changed an alert rule's window.
    rules_changed: watch::Sender<Time>,
    /// Deleted projects: their updates are not applied.
    forgotten: RwLock<HashSet<Symbol>>,
    /// Every tick before this one is fully applied.
    applied_through: AtomicU64,
    /// Each bucket is forgotten this long after it ends.
    retention_ms: i64,
    /// The second of the last [`ViewStore::expire`].
    expired_second: AtomicU64,
    changes: broadcast::Sender<Arc<ViewChange>>,
    /// Copies of the error samples noted since they were last taken, for
    /// the cluster's view feed; `None` unless [`ViewStore::tap_samples`].
    sample_tap: std::sync::Mutex<Option<Vec<(Symbol, Symbol, Event)>>>,
}

/// The retention window of `ViewStore::default()`: `serve`'s default.
pub const DEFAULT_RETENTION_MS: i64 = 30 * 86_400_000;

impl Default for ViewStore {
    fn default() -> Self {
        ViewStore::new(DEFAULT_RETENTION_MS)
    }
}

impl ViewStore {
    /// Views that forget each bucket `retention_ms` after it ends.
    pub fn new(retention_ms: i64) -> Self {
        ViewStore {
            names: Interner::default(),
            prop_sets: PropSets::default(),
            pageviews: RwLock::default(),
            errors: RwLock::default(),
            vitals: RwLock::default(),
            events: RwLock::default(),
            sessions: RwLock::default(),
            alerts: RwLock::default(),
            anomalies: RwLock::default(),
            rules_changed: watch::channel(0).0,
            forgotten: RwLock::default(),
            applied_through: AtomicU64::new(0),
            retention_ms,
            expired_second: AtomicU64::new(0),
            changes: broadcast::channel(4096).0,
            sample_tap: std::sync::Mutex::new(None),
        }
    }

    /// From now on keeps a copy of each noted error sample for
    /// [`ViewStore::take_tapped_samples`].
    pub fn tap_samples(&self) {
        self.sample_tap.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Vec::new);
    }

    /// The error samples noted since the last call (with the tap on).
    pub fn take_tapped_samples(&self) -> Vec<(Symbol, Symbol, Event)> {
        self.sample_tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// How long after its end a bucket is kept.
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    /// The interner shared with the pipeline's inputs.
    pub fn names(&self) -> &Interner {
        &self.names
    }

    /// Every tick before this one is reflected in the views.
    pub fn applied_through(&self) -> Time {
        self.applied_through.load(Ordering::Acquire)
    }

    /// The property sets shared with the pipeline's inputs.
    pub fn prop_sets(&self) -> &PropSets {
        &self.prop_sets
    }

    /// Subscribes to the change feed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ViewChange>> {
        self.changes.subscribe()
    }

    /// Applies the consolidated updates of all ticks before `through`:
    /// retractions first, so a value replaced within the tick is seen as
    /// replaced, not as removed and new. Each read model takes its updates
    /// under its own lock, so a reader never sees half a tick of one model;
    /// ingest, which notes error samples, waits only for the error updates.
    pub fn apply(&self, through: Time, updates: &[(ViewUpdate, isize)]) {
        if !updates.is_empty() {
            let mut page_moves = pageviews::PageviewMoves::new();
            let mut new_groups = errors::NewGroups::new();
            let mut retracted = HashSet::new();
            let window = (through, self.retention_ms);
            let tick = {
                let forgotten = self.forgotten.read().unwrap_or_else(|e| e.into_inner());
                let kept =
                    |(update, _): &&(ViewUpdate, isize)| forgotten.is_empty() || !forgotten.contains(&update.project());
                let retractions = updates.iter().filter(|(_, d)| *d < 0).filter(kept);
                let insertions = updates.iter().filter(|(_, d)| *d > 0).filter(kept);
                ByModel::split(retractions.chain(insertions))
            };
            if !tick.pageviews.is_empty() {
                let mut pageviews = self.pageviews.write().unwrap_or_else(|e| e.into_inner());
                for (u, diff) in tick.pageviews {
                    pageviews.apply(u, diff, through, self.retention_ms, &mut page_moves);
                }
            }
            if !tick.errors.is_empty() {
                let mut errors = self.errors.write().unwrap_or_else(|e| e.into_inner());
                for (u, diff) in tick.errors {
                    errors.apply(u, diff, window, &mut new_groups, &mut retracted);
                }
            }
            if !tick.vitals.is_empty() {
                let mut vitals = self.vitals.write().unwrap_or_else(|e| e.into_inner());
                tick.vitals.into_iter().for_each(|(u, diff)| vitals.apply(u, diff, window));
            }
            if !tick.events.is_empty() {
                let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
                tick.events.into_iter().for_each(|(row, diff)| events.apply(row, diff, window));
            }
            if !tick.sessions.is_empty() {
                let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
                tick.sessions.into_iter().for_each(|(row, diff)| sessions.apply(row, diff, window));
            }
            let rules_changed = !tick.rules.is_empty() || !tick.anomalies.is_empty();
            if !tick.rules.is_empty() {
                let mut alerts = self.alerts.write().unwrap_or_else(|e| e.into_inner());
                tick.rules.into_iter().for_each(|(sample, diff)| alerts.apply(sample, diff));
            }
            if !tick.anomalies.is_empty() {
                let mut anomalies = self.anomalies.write().unwrap_or_else(|e| e.into_inner());
                tick.anomalies.into_iter().for_each(|(point, diff)| anomalies.apply(point, diff as isize));
            }
            self.publish(through, page_moves, new_groups);
            if rules_changed {
                self.rules_changed.send_replace(through);
            }
        }
        self.expire(through);
        self.applied_through.fetch_max(through, Ordering::AcqRel);
    }

    /// Drops the buckets of the counted views (page views, errors, custom
    /// events, vitals) and of sessions that left the window by the tick
    /// `through`, at most once a second.
    fn expire(&self, through: Time) {
        let second = through / 1_000;
        if self.expired_second.swap(second, Ordering::AcqRel) == second {
            return;
        }
        let retention_ms = self.retention_ms;
        self.pageviews.write().unwrap_or_else(|e| e.into_inner()).expire(through, retention_ms);
        self.errors.write().unwrap_or_else(|e| e.into_inner()).expire(through, retention_ms);
        self.events.write().unwrap_or_else(|e| e.into_inner()).expire(through, retention_ms);
        self.vitals.write().unwrap_or_else(|e| e.into_inner()).expire(through, retention_ms);
        self.sessions.write().unwrap_or_else(|e| e.into_inner()).expire(through, retention_ms);
    }

    fn publish(&self, through: Time, page_moves: pageviews::PageviewMoves, new_groups: errors::NewGroups) {
        let tick = through.saturating_sub(1);
        let project_id = |p: Symbol| self.names.name(p).to_string();
        let mut changes = Vec::new();
        for (project, moves) in page_moves {
            let deltas = moves
                .into_iter()
                .map(|((t, path), (pageviews, visitors))| PageviewDelta {
                    t,
                    path: self.names.name(path).to_string(),
                    pageviews,
                    visitors,
                })
                .collect();
            changes.push(ViewChange { project_id: project_id(project), tick, body: ChangeBody::Pageviews(deltas) });
        }
        for (project, groups) in new_groups {
            let groups = groups
                .into_iter()
                .map(|(g, first_seen)| NewErrorGroup { fingerprint: self.names.name(g).to_string(), first_seen })
                .collect();
            changes.push(ViewChange { project_id: project_id(project), tick, body: ChangeBody::ErrorGroups(groups) });
        }
        for change in changes {
            // No subscribers is fine: nobody is watching.
            let _ = self.changes.send(Arc::new(change));
        }
    }

    /// A project's page views, errors and vital measurements of the minutes
    /// since `since` as alert signals (each at its minute's start), to fill
    /// the windows of a project's first rule.
    pub fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let mut signals = self.pageviews.read().unwrap_or_else(|e| e.into_inner()).signals_since(project, since);
        signals.extend(self.errors.read().unwrap_or_else(|e| e.into_inner()).signals_since(project, since));
        signals.extend(self.vitals.read().unwrap_or_else(|e| e.into_inner()).signals_since(project, since));
        signals
    }

    /// Wakes on every tick that changed an alert rule's window.
    pub fn watch_rules(&self) -> watch::Receiver<Time> {
        self.rules_changed.subscribe()
    }

    /// What an alert rule's window holds now (empty for an unknown rule).
    pub fn rule_window(&self, rule_id: &str) -> RuleWindow {
        match self.names.lookup(rule_id) {
            Some(rule) => self.alerts.read().unwrap_or_else(|e| e.into_inner()).window(rule),
            None => RuleWindow::default(),
        }
    }

    /// Drops a deleted project from every view; what the dataflow still
    /// holds of it (until its buckets expire, or the next start, which does
    /// not replay it) is never applied again.
    pub fn forget_project(&self, project_id: &str) {
        let Some(project) = self.names.lookup(project_id) else {
            return; // it never had an event
        };
        self.forgotten.write().unwrap_or_else(|e| e.into_inner()).insert(project);
        self.pageviews.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.errors.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.vitals.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.events.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.sessions.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.alerts.write().unwrap_or_else(|e| e.into_inner()).forget(project);
        self.anomalies.write().unwrap_or_else(|e| e.into_inner()).forget(project);
    }

    /// A project series' scored hours, oldest first (the current hour last,
    /// `partial`, once it is scored).
    pub fn anomalies(&self, project_id: &str, series: Series) -> Vec<AnomalyPoint> {
        let Some(project) = self.names.lookup(project_id) else {
            return Vec::new();
        };
        self.anomalies.read().unwrap_or_else(|e| e.into_inner()).points(project, series)
    }

    /// A project series' newest score, if it has one.
    pub fn anomaly_score(&self, project_id: &str, series: Series) -> Option<f64> {
        let project = self.names.lookup(project_id)?;
        let latest = self.anomalies.read().unwrap_or_else(|e| e.into_inner()).latest(project, series);
        latest.map(|p| p.score_milli as f64 / 1000.0)
    }

    /// Keeps each (project, group)'s newest events of a batch among the
    /// group's samples (the newest ten of all).
    pub fn note_error_samples(&self, samples: Vec<(Symbol, Symbol, Event)>) {
        if samples.is_empty() {
            return;
        }
        if let Some(tap) = self.sample_tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            tap.extend(samples.iter().cloned());
        }
        let mut dropped = Vec::new();
        {
            let mut errors = self.errors.write().unwrap_or_else(|e| e.into_inner());
            for (project, group, event) in samples {
                dropped.extend(errors.note_event(project, group, event));
            }
        }
        drop(dropped);
    }

    /// Page views and distinct visitors over a range, with a series per bucket.
    pub fn pageviews(&self, q: &PageviewsQuery) -> PageviewsAnswer {
        self.pageviews.read().unwrap_or_else(|e| e.into_inner()).answer(&self.names, q)
    }

    /// Error groups in a range, most frequent first.
    pub fn errors(&self, q: &ErrorsQuery) -> ErrorsAnswer {
        self.errors.read().unwrap_or_else(|e| e.into_inner()).answer(&self.names, q)
    }

    /// One error group with its latest event, or `None` if unknown.
    pub fn error_group(&self, q: &ErrorsQuery, fingerprint: &str) -> Option<ErrorGroupDetail> {
        self.errors.read().unwrap_or_else(|e| e.into_inner()).group(&self.names, q, fingerprint)
    }

    /// Page views and visitors per page, referrer, device, browser, OS or
    /// release: the `limit` values with the most visitors, most first.
    pub fn breakdown(&self, q: &PageviewsQuery, dimension: PageDimension, limit: usize) -> Vec<BreakdownRow> {
        self.pageviews.read().unwrap_or_else(|e| e.into_inner()).breakdown(&self.names, q, dimension, limit)
    }

    /// Sessions per entry page (or exit page, with `exits`), most first.
    pub fn session_pages(&self, q: &SessionsQuery, exits: bool) -> Vec<BreakdownRow> {
        let pages = self.sessions.read().unwrap_or_else(|e| e.into_inner()).pages(&self.names, q, exits);
        pages
            .into_iter()
            .map(|(page, sessions)| BreakdownRow {
                value: self.names.name(page).to_string(),
                visitors: None,
                pageviews: None,
                sessions: Some(sessions),
            })
            .collect()
    }

    /// Visitors with a page view in the last five minutes (as of `now`).
    pub fn current_visitors(&self, project_id: &str, now: i64) -> i64 {
        let Some(project) = self.names.lookup(project_id) else {
            return 0;
        };
        self.pageviews.read().unwrap_or_else(|e| e.into_inner()).visitors_since(project, now - CURRENT_VISITORS_MS)
    }

    /// Sessions starting in a range: count, bounce rate, duration, depth.
    pub fn sessions_summary(&self, q: &SessionsQuery) -> SessionsSummary {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).summary(&self.names, q)
    }

    /// Custom event counts, series and property breakdowns over a range.
    pub fn events(&self, q: &EventsQuery) -> EventsAnswer {
        self.events.read().unwrap_or_else(|e| e.into_inner()).answer(&self.names, &self.prop_sets, q)
    }

    /// Percentiles and ratings of one web vital over a range.
    pub fn vitals(&self, q: &VitalsQuery) -> VitalsAnswer {
        self.vitals.read().unwrap_or_else(|e| e.into_inner()).answer(&self.names, q)
    }

    /// One web vital's numbers per page (the `limit` pages with the most
    /// measurements), over a range.
    pub fn vitals_by_page(&self, q: &VitalsQuery, limit: usize) -> VitalsByPage {
        self.vitals.read().unwrap_or_else(|e| e.into_inner()).by_page(&self.names, q, limit)
    }

    /// Errors against page views per bucket.
    pub fn error_rate(&self, project_id: &str, interval: Interval, from: i64, to: i64) -> Vec<ErrorRatePoint> {
        let Some(project) = self.names.lookup(project_id) else {
            return Vec::new();
        };
        let errors = self.errors.read().unwrap_or_else(|e| e.into_inner()).counts(project, interval, from, to);
        let pageviews = self.pageviews.read().unwrap_or_else(|e| e.into_inner()).counts(project, interval, from, to);
        let mut points = Vec::new();
        let mut t = interval.bucket_of(from);
        while t < to && (points.len() as i64) < MAX_SERIES_POINTS {
            let errors = errors.get(&t).copied().unwrap_or(0);
            let pageviews = pageviews.get(&t).copied().unwrap_or(0);
            let rate = if pageviews > 0 { errors as f64 / pageviews as f64 } else { 0.0 };
            points.push(ErrorRatePoint { t, errors, pageviews, rate });
            t += interval.millis();
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use sightline_model::{PropValue, VitalName};
    use sightline_operators::vitals::{quantize, rate, scale};
    use sightline_operators::{ErrorCell, EventDims, PageDims, Session, VitalRow};

    use super::*;

    /// Three hours of page views, the sessions they make, custom events,
    /// vitals and errors, with one event in ten arriving 40 minutes late (some of them
    /// on pages not seen before), in ticks of 50 events.
    fn ticks(views: &ViewStore) -> Vec<(i64, Vec<(ViewUpdate, isize)>)> {
        let n = views.names();
        let project = n.intern("p");
        let mut sessions: HashMap<u64, Session> = HashMap::new();
        let mut ticks = Vec::new();
        let mut tick = Vec::new();
        for i in 0..5_400u64 {
            let now = i as i64 * 2_000;
            let late = i % 10 == 9 && now > 2_400_000;
            let ts = if late { now - 2_400_000 } else { now };
            let path = match (late, i % 20 == 19) {
                (true, true) => n.intern(&format!("/late/{}", i % 7)),
                _ => n.intern(["/", "/a", "/b", "/c"][(i % 4) as usize]),
            };
            let browser = n.intern(["Chrome", "Firefox"][(i % 2) as usize]);
            let dims = PageDims {
                browser,
                device: n.intern(["desktop", "mobile"][(i % 3 % 2) as usize]),
                ..PageDims::default()
            };
            // A late page view is its visitor's second of that page and
            // minute, or (on a new page) the first.
            let visitor = if late { (i - 1_200) % 97 } else { i % 97 };
            let hash = xxhash_rust::xxh3::xxh3_64(&visitor.to_le_bytes());
            tick.push((ViewUpdate::Pageview(PageviewRow { project, ts, path, visitor: hash, dims }), 1));
            // A visitor's session lasts 20 minutes of the stream.
            let key = visitor * 1_000 + (now / 1_200_000) as u64;
            let session = match sessions.get(&key) {
                Some(old) => {
                    tick.push((ViewUpdate::Session(SessionRow { project, session: *old }), -1));
                    Session { end: old.end.max(ts), pageviews: old.pageviews + 1, exit: path, ..*old }
                }
                None => {
                    let source = dims;
                    Session { start: ts, end: ts, pageviews: 1, custom_events: 0, entry: path, exit: path, source }
                }
            };
            sessions.insert(key, session);
            tick.push((ViewUpdate::Session(SessionRow { project, session }), 1));
            if i % 3 == 0 {
                let plan = ["free", "pro", "team"][(i % 9 / 3) as usize];
                let props: BTreeMap<String, PropValue> = [("plan".to_string(), PropValue::Str(plan.into()))].into();
                let dims = EventDims {
                    path,
                    device: dims.device,
                    browser,
                    release: n.intern(""),
                    props: views.prop_sets().intern(&mut n.batch(), &props),
                };
                tick.push((ViewUpdate::Event(EventRow { project, ts, name: n.intern("signup"), dims }), 1));
            }
            if i % 2 == 0 || late {
                let value = scale(VitalName::Lcp, 400.0 + (i % 50) as f64 * 90.0);
                let row = VitalRow {
                    project,
                    ts,
                    metric: VitalName::Lcp,
                    path,
                    device: dims.device,
                    browser,
                    release: n.intern(""),
                    value: quantize(value),
                };
                tick.push((ViewUpdate::Vital(VitalUpdate { row, rating: rate(VitalName::Lcp, value) }), 1));
            }
            if i % 5 == 0 || late {
                let group = n.intern(["TypeError", "RangeError", "SyntaxError"][(i % 3) as usize]);
                for interval in Interval::KEPT {
                    let bucket = interval.bucket_of(ts);
                    let (release, device) = (n.intern(["1.0", "1.1"][(i % 2) as usize]), dims.device);
                    let cell = ErrorCell { bucket, interval, group, project, release, path, device };
                    tick.push((ViewUpdate::Error(ErrorUpdate::Event(cell, hash)), 1));
                }
            }
            if i % 50 == 49 {
                // Consolidated, as the applier gets them: a session changed
                // twice in a tick is retracted and inserted once.
                differential_dataflow::consolidation::consolidate(&mut tick);
                ticks.push((now + 1, std::mem::take(&mut tick)));
            }
        }
        ticks
    }

    #[test]
    fn sealed_buckets_answer_as_open_ones_and_still_count_late_events() {
        // The same ticks, applied once as they came (buckets seal as the
        // stream moves past them) and once with a clock that never reaches
        // them (nothing seals).
        let (sealed, open) = (ViewStore::default(), ViewStore::default());
        // The live feed's page view and visitor moves per (minute, path), as
        // a page that adds them up would show them.
        type Feed = BTreeMap<(i64, String), (i64, i64)>;
        let read_feed = |changes: &mut broadcast::Receiver<Arc<ViewChange>>, feed: &mut Feed| {
            while let Ok(change) = changes.try_recv() {
                if let ChangeBody::Pageviews(deltas) = &change.body {
                    for d in deltas {
                        let moved = feed.entry((d.t, d.path.clone())).or_default();
                        *moved = (moved.0 + d.pageviews, moved.1 + d.visitors);
                    }
                }
            }
        };
        let (mut sealed_feed, mut open_feed) = (Feed::new(), Feed::new());
        let (mut sealed_changes, mut open_changes) = (sealed.subscribe(), open.subscribe());
        let before = cells::SEALED.with(std::cell::Cell::get);
        for (at, updates) in ticks(&sealed) {
            sealed.apply(u64::try_from(at).unwrap(), &updates);
            read_feed(&mut sealed_changes, &mut sealed_feed);
        }
        assert!(cells::SEALED.with(std::cell::Cell::get) > before + 1_000, "buckets were sealed");
        let sealed_count = cells::SEALED.with(std::cell::Cell::get);
        for (i, (_, updates)) in ticks(&open).into_iter().enumerate() {
            open.apply(u64::try_from(i + 1).unwrap(), &updates);
            read_feed(&mut open_changes, &mut open_feed);
        }
        assert_eq!(cells::SEALED.with(std::cell::Cell::get), sealed_count, "nothing sealed at a clock of 0");
        // Late page views reach sealed minutes, whose live feed counts
        // visitors from their page views.
        assert!(sealed_feed.keys().any(|(_, path)| path.starts_with("/late/")));
        assert_eq!(sealed_feed, open_feed);

        let ranges = [(0, 4 * 3_600_000), (1_800_000, 5_400_000), (3_600_000, 7_200_000)];
        let page_filters = [
            PageFilters::default(),
            PageFilters { path: Some("/a".into()), ..Default::default() },
            PageFilters { path: Some("/late/3".into()), ..Default::default() },
            PageFilters { browser: Some("Firefox".into()), ..Default::default() },
            PageFilters { browser: Some("Chrome".into()), device: Some("mobile".into()), ..Default::default() },
        ];
        let mut pageviews_seen = 0;
        for interval in Interval::ALL {
            for (from, to) in ranges {
                for filters in &page_filters {
                    let q = PageviewsQuery { project_id: "p".into(), interval, from, to, filters: filters.clone() };
                    let answer = sealed.pageviews(&q);
                    assert_eq!(answer, open.pageviews(&q), "{interval:?} {from}..{to} {filters:?}");
                    pageviews_seen += answer.total.pageviews;
                    for dimension in [PageDimension::Page, PageDimension::Browser, PageDimension::Device] {
                        assert_eq!(sealed.breakdown(&q, dimension, 10), open.breakdown(&q, dimension, 10));
                    }
                }
                let q = EventsQuery {
                    project_id: "p".into(),
                    interval,
                    from,
                    to,
                    name: Some("signup".into()),
                    filters: EventFilters::default(),
                };
                assert_eq!(sealed.events(&q), open.events(&q));
                let chrome = EventFilters { browser: Some("Chrome".into()), ..Default::default() };
                let q = EventsQuery { filters: chrome, ..q };
                assert_eq!(sealed.events(&q), open.events(&q));
            }
        }
        assert!(pageviews_seen > 10_000);
        for (from, to) in ranges {
            for filters in &page_filters {
                let q = SessionsQuery { project_id: "p".into(), from, to, filters: filters.clone() };
                assert_eq!(sealed.sessions_summary(&q), open.sessions_summary(&q), "{from}..{to} {filters:?}");
                assert_eq!(sealed.session_pages(&q, false), open.session_pages(&q, false));
                assert_eq!(sealed.session_pages(&q, true), open.session_pages(&q, true));
            }
            for (release, path) in [(None, None), (Some("1.1"), None), (None, Some("/late/3"))] {
                let q = ErrorsQuery {
                    project_id: "p".into(),
                    from,
                    to,
                    release: release.map(str::to_string),
                    path: path.map(str::to_string),
                    device: None,
                };
                assert_eq!(sealed.errors(&q), open.errors(&q), "{from}..{to} {release:?} {path:?}");
                assert_eq!(
                    sealed.error_rate("p", Interval::Minute, from, to),
                    open.error_rate("p", Interval::Minute, from, to)
                );
            }
            let q = VitalsQuery {
                project_id: "p".into(),
                metric: VitalName::Lcp,
                from,
                to,
                path: None,
                device: None,
                browser: None,
                release: None,
            };
            assert_eq!(sealed.vitals(&q), open.vitals(&q));
            assert_eq!(sealed.vitals_by_page(&q, 5), open.vitals_by_page(&q, 5));
            let q = VitalsQuery { path: Some("/late/3".into()), browser: Some("Firefox".into()), ..q };
            assert_eq!(sealed.vitals(&q), open.vitals(&q));
        }
    }

    #[test]
    fn a_day_answers_as_its_hours_do() {
        let views = ViewStore::default();
        for (at, updates) in ticks(&views) {
            views.apply(u64::try_from(at).unwrap(), &updates);
        }
        let day = 86_400_000;
        let pageviews = |interval, to| {
            views.pageviews(&PageviewsQuery {
                project_id: "p".into(),
                interval,
                from: 0,
                to,
                filters: Default::default(),
            })
        };
        let (by_day, by_hour) = (pageviews(Interval::Day, 2 * day), pageviews(Interval::Hour, day));
        assert_eq!(by_day.total, by_hour.total);
        assert!(by_day.total.pageviews > 5_000);
        let days: Vec<_> = by_day.series.iter().map(|p| (p.t, p.pageviews, p.visitors)).collect();
        assert_eq!(days, [(0, by_hour.total.pageviews, by_hour.total.visitors), (day, 0, 0)]);
        let q = PageviewsQuery {
            project_id: "p".into(),
            interval: Interval::Day,
            from: 0,
            to: day,
            filters: Default::default(),
        };
        let pages = views.breakdown(&q, PageDimension::Page, 10);
        assert_eq!(
            pages,
            views.breakdown(&PageviewsQuery { interval: Interval::Hour, ..q.clone() }, PageDimension::Page, 10)
        );
        let rate = views.error_rate("p", Interval::Day, 0, day);
        let hourly = views.error_rate("p", Interval::Hour, 0, day);
        assert_eq!(rate[0].pageviews, by_hour.total.pageviews);
        assert_eq!(rate[0].errors, hourly.iter().map(|p| p.errors).sum::<i64>());
        assert!(rate[0].errors > 500);
        let events = |interval| {
            let name = Some("signup".into());
            views.events(&EventsQuery {
                project_id: "p".into(),
                interval,
                from: 0,
                to: day,
                name,
                filters: Default::default(),
            })
        };
        let (events_by_day, events_by_hour) = (events(Interval::Day), events(Interval::Hour));
        assert_eq!(events_by_day.total, events_by_hour.total);
        assert_eq!(events_by_day.series[0].count, events_by_hour.total);
        assert_eq!(events_by_day.breakdown, events_by_hour.breakdown);
        // Ranges past 31 days are asked by day.
        let sessions = |to| {
            views.sessions_summary(&SessionsQuery { project_id: "p".into(), from: 0, to, filters: Default::default() })
        };
        assert_eq!(sessions(40 * day), sessions(day));
        assert!(sessions(day).sessions > 100);
        let vitals = |to| {
            let q = VitalsQuery {
                project_id: "p".into(),
                metric: VitalName::Lcp,
                from: 0,
                to,
                path: None,
                device: None,
                browser: None,
                release: None,
            };
            (views.vitals(&q), views.vitals_by_page(&q, 5))
        };
        assert_eq!(vitals(40 * day), vitals(day));
    }

    #[test]
    fn minutes_and_hours_give_the_same_entry_and_exit_pages() {
        let views = ViewStore::default();
        for (at, updates) in ticks(&views) {
            views.apply(u64::try_from(at).unwrap(), &updates);
        }
        // The sessions start in the first three hours: six hours are asked
        // by minute (from the cells), seven by hour (from the page counts).
        let q = |hours: i64| SessionsQuery {
            project_id: "p".into(),
            from: 0,
            to: hours * 3_600_000,
            filters: Default::default(),
        };
        for exits in [false, true] {
            let by_minute = views.session_pages(&q(6), exits);
            assert_eq!(by_minute, views.session_pages(&q(7), exits), "exits: {exits}");
            assert!(by_minute.len() >= 4 && by_minute[0].sessions > Some(100), "{by_minute:?}");
        }
    }
}
