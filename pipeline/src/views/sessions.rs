//! The sessions read model: per project, interval, start bucket, entry page
//! and the entry page view's dimensions, the sums a summary needs and how
//! many sessions left on each page. Sessions themselves are not kept: a
//! changed session arrives as a retraction of its old numbers and an
//! insertion of its new ones, and each is counted in its start's bucket of
//! every interval. Filters match the entry page view (`path`: the entry
//! page; device, browser, OS, referrer, release).
//!
//! A bucket is dropped whole once it has been out of the retention window,
//! and what still arrives for it is not counted: the dataflow does not
//! retract sessions for their age.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{Interval, Session, SessionRow, Symbol, Time};
use thin_vec::{ThinVec, thin_vec};

use super::cells::{Cell, Cells, add_count};
use super::pageviews::{DimsId, DimsTable, PageFilters, Resolved};
use super::{KEPT, Names, Sealing, add_i32, drop_expired, in_window_buckets, interval_for, interval_index};

/// What some sessions add up to, as a question adds them.
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

    fn merge_cell(&mut self, cell: &Totals) {
        self.sessions += i64::from(cell.sessions);
        self.bounces += i64::from(cell.bounces);
        self.duration_ms += cell.duration_ms;
        self.pageviews += i64::from(cell.pageviews);
    }
}

/// What the sessions starting in one bucket, entering on one page with one
/// set of dimensions, add up to. There are about as many cells as sessions
/// at minute resolution, so counts are 32-bit and a single exit page is
/// held inline: 32 bytes where `Sums` and a `Vec` of exits took 56 and an
/// allocation (and an enum of one exit page or a list of them, 40).
#[derive(Debug, Default)]
struct Totals {
    duration_ms: i64,
    sessions: i32,
    bounces: i32,
    pageviews: i32,
    /// Where all of the cell's sessions left, unless `exits` counts them.
    exit: Symbol,
    /// Sessions per exit page, once they left on more than one.
    exits: Option<ThinVec<(Symbol, i32)>>,
}

impl Cell for Totals {
    fn is_empty(&self) -> bool {
        self.sessions == 0
    }

    fn seal(&mut self) {
        if let Some(pages) = &mut self.exits {
            pages.shrink_to_fit();
        }
    }
}

impl Totals {
    fn add(&mut self, s: &Session, diff: i64) {
        match &mut self.exits {
            None if self.exit == s.exit || self.sessions == 0 => self.exit = s.exit,
            None => self.exits = Some(thin_vec![(self.exit, self.sessions), (s.exit, add_i32(0, diff))]),
            Some(pages) => {
                match pages.iter().position(|(p, _)| *p == s.exit) {
                    Some(at) => {
                        pages[at].1 = add_i32(pages[at].1, diff);
                        if pages[at].1 == 0 {
                            pages.swap_remove(at);
                        }
                    }
                    None => pages.push((s.exit, add_i32(0, diff))),
                }
                if let [(page, _)] = pages[..] {
                    (self.exit, self.exits) = (page, None);
                }
            }
        }
        self.sessions = add_i32(self.sessions, diff);
        self.bounces = add_i32(self.bounces, diff * i64::from(s.bounce()));
        self.duration_ms += diff * s.duration_ms();
        self.pageviews = add_i32(self.pageviews, diff * i64::from(s.pageviews));
    }

    /// Calls `visit` with each exit page and its sessions.
    fn exits(&self, visit: &mut impl FnMut(Symbol, i64)) {
        match &self.exits {
            None => visit(self.exit, i64::from(self.sessions)),
            Some(pages) => pages.iter().for_each(|(page, n)| visit(*page, i64::from(*n))),
        }
    }
}

/// A bucket's sessions by (entry page, entry dimensions), and in total and
/// (hour buckets) per entry and exit page, which questions without filters
/// read. A minute's cells hold about one session each, so its entry and
/// exit pages are read from them: kept apart they took another 16 bytes or
/// so per session.
#[derive(Debug, Default)]
struct BucketSessions {
    total: Sums,
    entries: Cells<Symbol, i32>,
    exits: Cells<Symbol, i32>,
    cells: Cells<(Symbol, DimsId), Totals>,
}

impl BucketSessions {
    fn seal(&mut self) {
        self.entries.seal();
        self.exits.seal();
        self.cells.seal();
    }
}

#[derive(Debug, Default)]
struct ProjectSessions {
    by_interval: [BTreeMap<i64, BucketSessions>; KEPT],
    sealing: Sealing,
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

impl SessionViews {
    /// Counts a session (or takes it back) in its start's bucket of every
    /// interval still in the window (`through`, `retention_ms`).
    pub(super) fn apply(&mut self, row: &SessionRow, diff: i64, (through, retention_ms): (Time, i64)) {
        let s = &row.session;
        let source = self.dims.id(s.source);
        let project = self.projects.entry(row.project).or_default();
        project.sealing.note(s.start, through);
        in_window_buckets(&mut project.by_interval, s.start, (through, retention_ms), |interval, start, buckets| {
            let bucket = buckets.entry(start).or_default();
            bucket.total.add(s, diff);
            if interval != Interval::Minute {
                add_count(&mut bucket.entries, s.entry, diff);
                add_count(&mut bucket.exits, s.exit, diff);
            }
            bucket.cells.update((s.entry, source), |totals| totals.add(s, diff));
            if bucket.total.sessions == 0 {
                buckets.remove(&start);
            }
        });
    }

    /// Drops the buckets that left the window by the tick `through`, and
    /// seals those that ended.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        for project in self.projects.values_mut() {
            project.sealing.seal_ended(&mut project.by_interval, |_, bucket| bucket.seal());
            drop_expired(&mut project.by_interval, through, retention_ms);
        }
        self.projects.retain(|_, p| p.by_interval.iter().any(|b| !b.is_empty()));
    }

    /// The buckets of the range.
    fn buckets<'a>(&'a self, names: &Names, q: &SessionsQuery) -> impl Iterator<Item = &'a BucketSessions> + 'a {
        let interval = interval_for(q.from, q.to);
        let project = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p));
        let (first, to) = (interval.bucket_of(q.from), q.to);
        let buckets = move |p: &'a ProjectSessions| p.by_interval[interval_index(interval.kept())].range(first..to);
        project.into_iter().flat_map(buckets).map(|(_, b)| b)
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
            self.matching(names, q).for_each(|(_, totals)| sums.merge_cell(totals));
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
        if Resolved::new(names, &q.filters).is_empty() && interval_for(q.from, q.to) != Interval::Minute {
            for bucket in self.buckets(names, q) {
                for (&page, &n) in if exits { bucket.exits.iter() } else { bucket.entries.iter() } {
                    *pages.entry(page).or_default() += i64::from(n);
                }
            }
        } else {
            for (entry, totals) in self.matching(names, q) {
                if exits {
                    totals.exits(&mut |page, n| *pages.entry(page).or_default() += n);
                } else {
                    *pages.entry(entry).or_default() += i64::from(totals.sessions);
                }
            }
        }
        let mut pages: Vec<(Symbol, i64)> = pages.into_iter().filter(|(_, n)| *n != 0).collect();
        pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| names.name(a.0).cmp(&names.name(b.0))));
        pages
    }
}

#[cfg(test)]
mod tests {
    use sightline_operators::PageDims;

    use super::*;

    fn session(exit: Symbol, pageviews: u32) -> Session {
        let source = PageDims::default();
        Session { start: 0, end: 60_000, pageviews, custom_events: 0, entry: 1, exit, source }
    }

    fn exits(totals: &Totals) -> Vec<(Symbol, i64)> {
        let mut pages = Vec::new();
        totals.exits(&mut |page, n| pages.push((page, n)));
        pages.sort_unstable();
        pages
    }

    #[test]
    fn a_cell_counts_its_exit_pages_inline_until_there_are_two() {
        assert_eq!(std::mem::size_of::<Totals>(), 32);
        let mut totals = Totals::default();
        totals.add(&session(5, 2), 2);
        assert_eq!((exits(&totals), totals.exits.is_none()), (vec![(5, 2)], true));
        totals.add(&session(7, 1), 1);
        assert_eq!(exits(&totals), [(5, 2), (7, 1)]);
        assert_eq!((totals.sessions, totals.bounces, totals.pageviews), (3, 1, 5));
        // Back to one exit page: inline again.
        totals.add(&session(5, 2), -2);
        assert_eq!((exits(&totals), totals.exits.is_none()), (vec![(7, 1)], true));
        totals.add(&session(7, 1), -1);
        assert!(totals.is_empty());
        // An emptied cell takes the next session's exit page.
        totals.add(&session(9, 3), 1);
        assert_eq!(exits(&totals), [(9, 1)]);
    }
}
