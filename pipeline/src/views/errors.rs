//! The error groups read model: per project, counts and user sketches per
//! bucket and filterable attributes (each bucket dropped whole once out of
//! the window, as page views are), each group's first and last sighting,
//! and its latest event.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use sightline_model::{Event, EventKind, Frame, GroupRef, SourceContext};
use sightline_operators::{ErrorUpdate, Interval, Signal, SignalRow, Symbol, Time};

use super::cells::{self, Cells};
use super::sketch::VisitorSketch;
use super::{KEPT, Names, Sealing, drop_expired, expired, interval_index};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Attrs {
    group: Symbol,
    release: Symbol,
    path: Symbol,
    device: Symbol,
}

#[derive(Debug, Default)]
struct Cell {
    count: i64,
    users: VisitorSketch,
}

/// A group's events in one bucket, over all its cells: what a question
/// without filters reads.
#[derive(Debug, Default)]
struct GroupCell {
    count: i64,
    users: VisitorSketch,
    /// Events per release.
    releases: Vec<(Symbol, i64)>,
}

impl cells::Cell for Cell {
    fn is_empty(&self) -> bool {
        self.count <= 0
    }

    fn seal(&mut self) {
        self.users.shrink();
    }
}

impl cells::Cell for GroupCell {
    fn is_empty(&self) -> bool {
        self.count <= 0
    }

    fn seal(&mut self) {
        self.users.shrink();
        self.releases.shrink_to_fit();
    }
}

/// One bucket of a project's errors: its cells, and per group.
#[derive(Debug, Default)]
struct ErrorBucket {
    by_group: Cells<Symbol, GroupCell>,
    cells: Cells<Attrs, Cell>,
}

impl ErrorBucket {
    fn seal(&mut self) {
        self.by_group.seal();
        self.cells.seal();
    }
}

#[derive(Debug, Default)]
struct ProjectErrors {
    by_interval: [BTreeMap<i64, ErrorBucket>; KEPT],
    /// group → (first, last) event time.
    seen: HashMap<Symbol, (i64, i64)>,
    /// group → its newest events, newest first, at most [`LATEST_EVENTS`].
    latest: HashMap<Symbol, Vec<Arc<Event>>>,
    sealing: Sealing,
}

/// Events kept per group for its page.
pub const LATEST_EVENTS: usize = 10;

/// All projects' error groups.
#[derive(Debug, Default)]
pub(super) struct ErrorViews {
    projects: HashMap<Symbol, ProjectErrors>,
}

impl ErrorViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }

    /// Drops the buckets that left the window by the tick `through`, and a
    /// project's sample events once nothing else of it is left. (Only when
    /// a bucket left: a batch's samples are noted before the dataflow's
    /// counts of it arrive, and must not be dropped in between.) Seals the
    /// buckets that ended.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        for project in self.projects.values_mut() {
            project.sealing.seal_ended(&mut project.by_interval, |_, bucket| bucket.seal());
            let removed = drop_expired(&mut project.by_interval, through, retention_ms);
            if removed && project.seen.is_empty() && project.by_interval.iter().all(BTreeMap::is_empty) {
                project.latest.clear();
            }
        }
    }

    /// A project's error events of the minutes since `since` as alert
    /// signals, each at its minute's start.
    pub(super) fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let Some(p) = self.projects.get(&project) else {
            return Vec::new();
        };
        let minutes = p.by_interval[super::interval_index(Interval::Minute)].range(since..);
        minutes
            .flat_map(|(start, bucket)| bucket.cells.iter().map(move |(attrs, cell)| (*start, attrs, cell)))
            .map(|(bucket, attrs, cell)| {
                let signal = SignalRow {
                    project,
                    received_s: bucket.div_euclid(1000),
                    signal: Signal::Error,
                    path: attrs.path,
                    release: attrs.release,
                    device: attrs.device,
                };
                (signal, cell.count as isize)
            })
            .collect()
    }
}

/// Filters of the error queries; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ErrorsQuery {
    pub project_id: String,
    pub from: i64,
    pub to: i64,
    pub release: Option<String>,
    pub path: Option<String>,
    pub device: Option<String>,
}

/// One error group in a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorGroupSummary {
    pub fingerprint: String,
    pub error_type: Option<String>,
    pub message: Option<String>,
    /// Events in the range (and filters).
    pub count: i64,
    /// Distinct users in the range (and filters).
    pub users: i64,
    /// First and last event of the group, ms since the epoch, over all
    /// retained data.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Releases seen in the range.
    pub releases: Vec<String>,
    /// Events over the range in at most 24 equal slices, oldest first: the
    /// list's sparkline.
    pub trend: Vec<i64>,
}

/// The contract's answer to `errors`: most frequent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorsAnswer {
    pub groups: Vec<ErrorGroupSummary>,
}

/// The latest event of a group, as the group page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorEventView {
    pub id: String,
    pub ts: i64,
    pub received_at: i64,
    pub anonymous_id: String,
    pub url: Option<String>,
    pub path: String,
    pub release: Option<String>,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub stack: Option<String>,
    /// Innermost first, with `in_app` decided.
    pub frames: Vec<EventFrame>,
}

/// A frame of the group page, with the original source around it when a
/// source map with sources resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventFrame {
    #[serde(flatten)]
    pub frame: Frame,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<SourceContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorCountPoint {
    pub t: i64,
    pub count: i64,
}

/// The answer to `errors/{fingerprint}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorGroupDetail {
    #[serde(flatten)]
    pub summary: ErrorGroupSummary,
    /// How the group was decided.
    pub grouping: Option<GroupRef>,
    /// Events per bucket in the range.
    pub series: Vec<ErrorCountPoint>,
    pub latest_event: Option<ErrorEventView>,
    /// The group's newest events, newest first (at most 10), with the
    /// frames they were sent with (stacks are resolved for `latest_event`).
    pub latest_events: Vec<ErrorEventView>,
}

/// A group seen for the first time (the live feed's `error_groups`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewErrorGroup {
    pub fingerprint: String,
    pub first_seen: i64,
}

/// Errors and page views per bucket: the error rate.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorRatePoint {
    pub t: i64,
    pub errors: i64,
    pub pageviews: i64,
    /// Errors per page view; 0 without page views.
    pub rate: f64,
}

/// The bucket width used for a range: minutes up to 6 h, hours up to 31
/// days, days beyond.
pub fn interval_for(from: i64, to: i64) -> Interval {
    let span = to.saturating_sub(from);
    if span <= 6 * Interval::Hour.millis() {
        Interval::Minute
    } else if span <= 31 * Interval::Day.millis() {
        Interval::Hour
    } else {
        Interval::Day
    }
}

/// Per project: groups seen for the first time this tick.
pub(super) type NewGroups = BTreeMap<Symbol, Vec<(Symbol, i64)>>;

/// Resolved filter symbols; `Some(Symbol::MAX)` for a value never seen.
struct Filters {
    release: Option<Symbol>,
    path: Option<Symbol>,
    device: Option<Symbol>,
}

impl Filters {
    fn new(names: &Names, q: &ErrorsQuery) -> Filters {
        let resolve = |v: &Option<String>| v.as_deref().map(|v| names.lookup(v).unwrap_or(Symbol::MAX));
        Filters { release: resolve(&q.release), path: resolve(&q.path), device: resolve(&q.device) }
    }

    fn matches(&self, a: &Attrs) -> bool {
        self.release.is_none_or(|r| r == a.release)
            && self.path.is_none_or(|p| p == a.path)
            && self.device.is_none_or(|d| d == a.device)
    }
}

#[derive(Default)]
struct Tally {
    count: i64,
    users: VisitorSketch,
    releases: BTreeSet<Symbol>,
}

/// What a range holds, per group and per (group, bucket).
struct Tallies {
    interval: Interval,
    by_group: BTreeMap<Symbol, Tally>,
    per_bucket: BTreeMap<(Symbol, i64), i64>,
}

impl ErrorViews {
    /// Applies one consolidated update. Retractions of a tick must be
    /// applied before its insertions (see `ViewStore::apply`). Events of a
    /// bucket already out of the window (`through`, `retention_ms`) are not
    /// counted.
    pub(super) fn apply(
        &mut self,
        update: &ErrorUpdate,
        diff: i64,
        (through, retention_ms): (Time, i64),
        new_groups: &mut NewGroups,
        retracted: &mut HashSet<(Symbol, Symbol)>,
    ) {
        match update {
            ErrorUpdate::Event(c, user) => {
                if expired(c.interval, c.bucket, through, retention_ms) {
                    return;
                }
                let project = self.projects.entry(c.project).or_default();
                project.sealing.note(c.bucket, through);
                let buckets = &mut project.by_interval[interval_index(c.interval)];
                let attrs = Attrs { group: c.group, release: c.release, path: c.path, device: c.device };
                let bucket = buckets.entry(c.bucket).or_default();
                bucket.by_group.update(c.group, |group| {
                    group.count += diff;
                    match group.releases.iter().position(|(r, _)| *r == c.release) {
                        Some(at) => group.releases[at].1 += diff,
                        None => group.releases.push((c.release, diff)),
                    }
                    group.releases.retain(|(_, n)| *n > 0);
                    if diff > 0 {
                        group.users.insert(*user);
                    }
                });
                bucket.cells.update(attrs, |cell| {
                    cell.count += diff;
                    if diff > 0 {
                        cell.users.insert(*user);
                    }
                });
                if diff < 0 && bucket.cells.is_empty() {
                    buckets.remove(&c.bucket);
                }
            }
            ErrorUpdate::Seen { project, group, first, last } => {
                let errors = self.projects.entry(*project).or_default();
                if diff < 0 {
                    if errors.seen.get(group) == Some(&(*first, *last)) {
                        errors.seen.remove(group);
                        retracted.insert((*project, *group));
                    }
                } else if errors.seen.insert(*group, (*first, *last)).is_none()
                    && !retracted.contains(&(*project, *group))
                {
                    new_groups.entry(*project).or_default().push((*group, *first));
                }
                if errors.seen.is_empty() && errors.by_interval.iter().all(BTreeMap::is_empty) {
                    errors.latest.clear();
                }
            }
        }
    }

    /// Keeps `event` among its group's newest events if it is one of them.
    /// What is not kept (`event` itself, or the event it displaced) is
    /// handed back, for the caller to drop outside the lock.
    pub(super) fn note_event(&mut self, project: Symbol, group: Symbol, event: Event) -> Option<Arc<Event>> {
        let newest = self.projects.entry(project).or_default().latest.entry(group).or_default();
        let key = |e: &Event| (e.ts, e.received_at);
        // Newest first; an event as new as one held goes before it.
        let at = newest.partition_point(|held| key(held) > key(&event));
        if at >= LATEST_EVENTS {
            return Some(Arc::new(event));
        }
        newest.insert(at, Arc::new(event));
        (newest.len() > LATEST_EVENTS).then(|| newest.pop()).flatten()
    }

    fn tallies(&self, names: &Names, q: &ErrorsQuery, group: Option<Symbol>) -> Tallies {
        let interval = interval_for(q.from, q.to);
        let filters = Filters::new(names, q);
        let mut tallies = Tallies { interval, by_group: BTreeMap::new(), per_bucket: BTreeMap::new() };
        let Some(project) = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p)) else {
            return tallies;
        };
        let buckets = &project.by_interval[interval_index(interval.kept())];
        let unfiltered = filters.release.is_none() && filters.path.is_none() && filters.device.is_none();
        for (&start, bucket) in buckets.range(interval.bucket_of(q.from)..q.to) {
            // A day's point adds up its hours.
            let t = interval.bucket_of(start);
            if unfiltered {
                for (&g, cell) in bucket.by_group.iter().filter(|(g, _)| group.is_none_or(|want| want == **g)) {
                    let tally = tallies.by_group.entry(g).or_default();
                    tally.count += cell.count;
                    tally.users.merge(&cell.users);
                    tally.releases.extend(cell.releases.iter().map(|(r, _)| *r));
                    *tallies.per_bucket.entry((g, t)).or_default() += cell.count;
                }
                continue;
            }
            for (attrs, cell) in bucket.cells.iter() {
                if !filters.matches(attrs) || group.is_some_and(|g| g != attrs.group) {
                    continue;
                }
                let tally = tallies.by_group.entry(attrs.group).or_default();
                tally.count += cell.count;
                tally.users.merge(&cell.users);
                tally.releases.insert(attrs.release);
                *tallies.per_bucket.entry((attrs.group, t)).or_default() += cell.count;
            }
        }
        tallies
    }

    fn summary(
        &self,
        names: &Names,
        project: &ProjectErrors,
        group: Symbol,
        tally: &Tally,
        trend: Vec<i64>,
    ) -> ErrorGroupSummary {
        let latest = project.latest.get(&group).and_then(|events| events.first());
        let (error_type, message) = match latest.map(|e| &e.kind) {
            Some(EventKind::Error { error_type, message, .. }) => (error_type.clone(), message.clone()),
            _ => (None, None),
        };
        let (first_seen, last_seen) = project.seen.get(&group).copied().unwrap_or_default();
        ErrorGroupSummary {
            fingerprint: names.name(group).to_string(),
            error_type,
            message,
            count: tally.count,
            users: tally.users.count(),
            first_seen,
            last_seen,
            releases: tally.releases.iter().map(|r| names.name(*r).to_string()).filter(|r| !r.is_empty()).collect(),
            trend,
        }
    }

    pub(super) fn answer(&self, names: &Names, q: &ErrorsQuery) -> ErrorsAnswer {
        let Tallies { interval, by_group, per_bucket } = self.tallies(names, q, None);
        let Some(project) = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p)) else {
            return ErrorsAnswer { groups: Vec::new() };
        };
        let mut groups: Vec<ErrorGroupSummary> = by_group
            .iter()
            .filter(|(_, t)| t.count > 0)
            .map(|(&group, tally)| {
                let trend = trend(&bucket_counts(&per_bucket, group, interval, q.from, q.to));
                self.summary(names, project, group, tally, trend)
            })
            .collect();
        groups.sort_by(|a, b| {
            b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)).then(a.fingerprint.cmp(&b.fingerprint))
        });
        ErrorsAnswer { groups }
    }

    pub(super) fn group(&self, names: &Names, q: &ErrorsQuery, fingerprint: &str) -> Option<ErrorGroupDetail> {
        let project = self.projects.get(&names.lookup(&q.project_id)?)?;
        let group = names.lookup(fingerprint)?;
        if !project.seen.contains_key(&group) {
            return None;
        }
        let Tallies { interval, by_group, per_bucket } = self.tallies(names, q, Some(group));
        let empty = Tally::default();
        let series = bucket_counts(&per_bucket, group, interval, q.from, q.to);
        let trend = trend(&series);
        let summary = self.summary(names, project, group, by_group.get(&group).unwrap_or(&empty), trend);
        let newest = project.latest.get(&group).map(Vec::as_slice).unwrap_or_default();
        let grouping = match newest.first().map(|e| &e.kind) {
            Some(EventKind::Error { group, .. }) => group.clone(),
            _ => None,
        };
        let latest_events: Vec<ErrorEventView> = newest.iter().map(|e| event_view(e)).collect();
        let latest_event = latest_events.first().cloned();
        Some(ErrorGroupDetail { summary, grouping, series, latest_event, latest_events })
    }

    /// Errors per bucket of a project, all groups.
    pub(super) fn counts(&self, project: Symbol, interval: Interval, from: i64, to: i64) -> BTreeMap<i64, i64> {
        let mut counts = BTreeMap::new();
        if let Some(p) = self.projects.get(&project) {
            for (&t, bucket) in p.by_interval[interval_index(interval.kept())].range(interval.bucket_of(from)..to) {
                *counts.entry(interval.bucket_of(t)).or_default() +=
                    bucket.by_group.iter().map(|(_, g)| g.count).sum::<i64>();
            }
        }
        counts
    }
}

fn event_view(e: &Event) -> ErrorEventView {
    let (error_type, message, stack, frames) = match &e.kind {
        EventKind::Error { error_type, message, stack, frames, .. } => {
            (error_type.clone(), message.clone(), stack.clone(), frames.clone())
        }
        _ => (None, None, None, Vec::new()),
    };
    ErrorEventView {
        id: e.id.to_string(),
        ts: e.ts,
        received_at: e.received_at,
        anonymous_id: e.anonymous_id.clone(),
        url: e.url.clone(),
        path: e.path.clone(),
        release: e.release.clone(),
        device: e.device.as_str().to_owned(),
        browser: e.browser.clone(),
        os: e.os.clone(),
        error_type,
        message,
        stack,
        frames: frames.into_iter().map(|frame| EventFrame { frame, context: None }).collect(),
    }
}
/// A group's count in each bucket of a range, empty buckets included.
fn bucket_counts(
    per_bucket: &BTreeMap<(Symbol, i64), i64>,
    group: Symbol,
    interval: Interval,
    from: i64,
    to: i64,
) -> Vec<ErrorCountPoint> {
    let width = interval.millis();
    let mut series = Vec::new();
    let mut t = interval.bucket_of(from);
    while t < to && series.len() < 10_000 {
        series.push(ErrorCountPoint { t, count: per_bucket.get(&(group, t)).copied().unwrap_or(0) });
        t += width;
    }
    series
}

/// Most points of a trend.
const TREND_POINTS: usize = 24;

/// Counts summed into at most [`TREND_POINTS`] consecutive slices.
fn trend(series: &[ErrorCountPoint]) -> Vec<i64> {
    let per_point = series.len().div_ceil(TREND_POINTS).max(1);
    series.chunks(per_point).map(|chunk| chunk.iter().map(|p| p.count).sum()).collect()
}

#[cfg(test)]
mod trend_tests {
    use super::*;

    fn series(counts: &[i64]) -> Vec<ErrorCountPoint> {
        counts.iter().enumerate().map(|(i, &count)| ErrorCountPoint { t: i as i64, count }).collect()
    }

    #[test]
    fn a_trend_has_at_most_24_points_and_keeps_every_event() {
        let hourly: Vec<i64> = (0..48).collect();
        let trend = trend(&series(&hourly));
        assert_eq!(trend.len(), 24);
        assert_eq!(trend[0], 1, "0 + 1");
        assert_eq!(trend.iter().sum::<i64>(), hourly.iter().sum::<i64>());
        assert_eq!(super::trend(&series(&[3, 0, 5])), vec![3, 0, 5], "short ranges keep their buckets");
        assert!(super::trend(&[]).is_empty());
    }
}

#[cfg(test)]
mod tests {
    use sightline_operators::ErrorCell;

    use super::super::{ViewStore, ViewUpdate};
    use super::*;

    #[test]
    fn the_group_rollups_answer_as_the_cells_do() {
        let views = ViewStore::default();
        let names = views.names();
        let mut updates = Vec::new();
        for i in 0..300u64 {
            let cell = ErrorCell {
                bucket: (i % 5) as i64 * 3_600_000,
                interval: Interval::Hour,
                group: names.intern(["g1", "g2", "g3"][(i % 3) as usize]),
                project: names.intern("p"),
                release: names.intern(["1.0", "1.1"][(i % 2) as usize]),
                path: names.intern(["/a", "/b", "/c", "/d"][(i % 4) as usize]),
                device: names.intern("desktop"),
            };
            let user = xxhash_rust::xxh3::xxh3_64(&(i % 70).to_le_bytes());
            updates.push((ViewUpdate::Error(ErrorUpdate::Event(cell, user)), 1 + (i % 2) as isize));
        }
        views.apply(10, &updates);
        // Longer than six hours: answered from hour buckets.
        let q = ErrorsQuery { project_id: "p".into(), from: 0, to: 7 * 3_600_000, ..Default::default() };
        // A filter every cell passes makes the answer a scan of the cells.
        let scanned = ErrorsQuery { device: Some("desktop".into()), ..q.clone() };
        let (rollup, scan) = (views.errors(&q), views.errors(&scanned));
        assert_eq!(rollup, scan);
        assert_eq!(rollup.groups.len(), 3);
        assert_eq!(rollup.groups.iter().map(|g| g.count).sum::<i64>(), 450);
        assert_eq!(rollup.groups[0].releases, vec!["1.0".to_string(), "1.1".to_string()]);
        assert_eq!(views.error_rate("p", Interval::Hour, 0, 5 * 3_600_000)[0].errors, 90);
    }

    #[test]
    fn samples_noted_before_their_counts_arrive_are_kept() {
        let views = ViewStore::default();
        let project = views.names().intern("p");
        let group = views.names().intern("g");
        let event = Event {
            id: uuid::Uuid::now_v7(),
            project_id: "p".into(),
            received_at: 0,
            ts: 0,
            client_ts: None,
            anonymous_id: "a".into(),
            session_id: None,
            url: None,
            path: "/".into(),
            release: None,
            device: sightline_model::DeviceClass::Desktop,
            browser: "Firefox".into(),
            os: "Linux".into(),
            kind: EventKind::Error {
                error_type: Some("TypeError".into()),
                message: None,
                stack: None,
                frames: Vec::new(),
                fingerprint: None,
                group: None,
            },
        };
        views.note_error_samples(vec![(project, group, event)]);
        // Ticks pass (and expiry runs) before the dataflow's counts of it.
        views.apply(5_000, &[]);
        views.apply(6_000, &[]);
        let errors = views.errors.read().unwrap();
        assert_eq!(errors.projects[&project].latest[&group].len(), 1);
    }
}
