//! The sessions read model: per project, interval, start bucket, entry page
//! and the entry page view's dimensions, the sums a summary needs and how
//! many sessions left on each page. Sessions themselves are not kept: a
//! changed session arrives as a retraction of its old numbers and an
//! insertion of its new ones. Filters match the entry page view (`path`:
//! the entry page; device, browser, OS, referrer, release).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{Session, SessionUpdate, Symbol};

use super::pageviews::{DimsId, DimsTable, PageFilters, Resolved};
use super::{CellMap, Names, interval_for, interval_index};

/// What some sessions add up to.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    sessions: i64,
    bounces: i64,
    duration_ms: i64,
    pageviews: i64,
}

impl Sums {
    fn add(&mut self, s: &Session, diff: i64) {
        self.sessions += diff;
        self.bounces += diff * i64::from(s.bounce());
        self.duration_ms += diff * s.duration_ms();
        self.pageviews += diff * i64::from(s.pageviews);
    }

    fn merge(&mut self, other: &Sums) {
        self.sessions += other.sessions;
        self.bounces += other.bounces;
        self.duration_ms += other.duration_ms;
        self.pageviews += other.pageviews;
    }
}

/// What the sessions starting in one bucket, entering on one page with one
/// set of dimensions, add up to.
#[derive(Debug, Default)]
struct Totals {
    sums: Sums,
    /// Sessions per exit page: a list, as most cells hold one session (a
    /// map per cell took about 100 bytes more).
    exits: Vec<(Symbol, i64)>,
}

/// A bucket's sessions by (entry page, entry dimensions), and in total and
/// per entry and exit page (what questions without filters read).
#[derive(Debug, Default)]
struct BucketSessions {
    total: Sums,
    entries: CellMap<Symbol, i64>,
    exits: CellMap<Symbol, i64>,
    cells: CellMap<(Symbol, DimsId), Totals>,
}

fn count(pages: &mut CellMap<Symbol, i64>, page: Symbol, diff: i64) {
    let n = pages.entry(page).or_default();
    *n += diff;
    if *n == 0 {
        pages.remove(&page);
    }
}

#[derive(Debug, Default)]
struct ProjectSessions {
    by_interval: [BTreeMap<i64, BucketSessions>; 3],
}

#[derive(Debug, Default)]
pub(super) struct SessionViews {
    projects: HashMap<Symbol, ProjectSessions>,
    /// The entry page views' dimensions of the cells.
    dims: DimsTable,
}

impl SessionViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }
}

/// A sessions question: sessions that started in `[from, to)`.
#[derive(Debug, Clone)]
pub struct SessionsQuery {
    pub project_id: String,
    pub from: i64,
    pub to: i64,
    pub filters: PageFilters,
}

/// The contract's answer to `sessions/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SessionsSummary {
    pub sessions: i64,
    /// Sessions with exactly one page view and no custom event, as a fraction.
    pub bounce_rate: f64,
    /// Bounces count as 0 ms.
    pub avg_duration_ms: f64,
    pub pages_per_session: f64,
}

fn add(exits: &mut Vec<(Symbol, i64)>, page: Symbol, diff: i64) {
    match exits.iter().position(|(p, _)| *p == page) {
        Some(at) => {
            exits[at].1 += diff;
            if exits[at].1 == 0 {
                exits.swap_remove(at);
            }
        }
        None => {
            exits.reserve_exact(1);
            exits.push((page, diff));
        }
    }
}

impl SessionViews {
    pub(super) fn apply(&mut self, update: &SessionUpdate, diff: i64) {
        let s = &update.session;
        let source = self.dims.id(s.source);
        let buckets =
            &mut self.projects.entry(update.project).or_default().by_interval[interval_index(update.interval)];
        let bucket = buckets.entry(update.bucket).or_default();
        bucket.total.add(s, diff);
        count(&mut bucket.entries, s.entry, diff);
        count(&mut bucket.exits, s.exit, diff);
        let totals = bucket.cells.entry((s.entry, source)).or_default();
        totals.sums.add(s, diff);
        add(&mut totals.exits, s.exit, diff);
        if totals.sums.sessions == 0 {
            bucket.cells.remove(&(s.entry, source));
            if bucket.cells.is_empty() {
                buckets.remove(&update.bucket);
            }
        }
    }

    /// The buckets of the range.
    fn buckets<'a>(&'a self, names: &Names, q: &SessionsQuery) -> impl Iterator<Item = &'a BucketSessions> + 'a {
        let interval = interval_for(q.from, q.to);
        let project = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p));
        let (first, to) = (interval.bucket_of(q.from), q.to);
        project.into_iter().flat_map(move |p| p.by_interval[interval_index(interval)].range(first..to)).map(|(_, b)| b)
    }

    /// The totals of every (entry page, dimensions) the filters keep, in
    /// the buckets of the range.
    fn matching<'a>(&'a self, names: &Names, q: &SessionsQuery) -> impl Iterator<Item = (Symbol, &'a Totals)> + 'a {
        let filters = Resolved::new(names, &q.filters);
        let cells = self.buckets(names, q).flat_map(|b| b.cells.iter());
        cells.filter(move |(key, _)| filters.matches(&self.dims.cell(key))).map(|((entry, _), totals)| (*entry, totals))
    }

    pub(super) fn summary(&self, names: &Names, q: &SessionsQuery) -> SessionsSummary {
        let mut sums = Sums::default();
        if Resolved::new(names, &q.filters).is_empty() {
            self.buckets(names, q).for_each(|b| sums.merge(&b.total));
        } else {
            self.matching(names, q).for_each(|(_, totals)| sums.merge(&totals.sums));
        }
        let per_session = |n: i64| if sums.sessions > 0 { n as f64 / sums.sessions as f64 } else { 0.0 };
        SessionsSummary {
            sessions: sums.sessions,
            bounce_rate: per_session(sums.bounces),
            avg_duration_ms: per_session(sums.duration_ms),
            pages_per_session: per_session(sums.pageviews),
        }
    }

    /// Sessions per entry (or exit) page in a range, most first.
    pub(super) fn pages(&self, names: &Names, q: &SessionsQuery, exits: bool) -> Vec<(Symbol, i64)> {
        let mut pages: HashMap<Symbol, i64> = HashMap::new();
        if Resolved::new(names, &q.filters).is_empty() {
            for bucket in self.buckets(names, q) {
                for (&page, &n) in if exits { &bucket.exits } else { &bucket.entries } {
                    *pages.entry(page).or_default() += n;
                }
            }
        } else {
            for (entry, totals) in self.matching(names, q) {
                if exits {
                    for &(page, n) in &totals.exits {
                        *pages.entry(page).or_default() += n;
                    }
                } else {
                    *pages.entry(entry).or_default() += totals.sums.sessions;
                }
            }
        }
        let mut pages: Vec<(Symbol, i64)> = pages.into_iter().filter(|(_, n)| *n != 0).collect();
        pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| names.name(a.0).cmp(&names.name(b.0))));
        pages
    }
}
