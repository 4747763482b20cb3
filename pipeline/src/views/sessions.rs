//! The sessions read model: per project, interval and start bucket, the
//! sums a summary needs, and how many sessions entered and left on each
//! page. Sessions themselves are not kept: a changed session arrives as a
//! retraction of its old numbers and an insertion of its new ones.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{SessionUpdate, Symbol};

use super::{Names, interval_for, interval_index};

/// What the sessions starting in one bucket add up to.
#[derive(Debug, Default)]
struct BucketTotals {
    sessions: i64,
    bounces: i64,
    duration_ms: i64,
    pageviews: i64,
    /// Sessions per entry page and per exit page.
    entries: HashMap<Symbol, i64>,
    exits: HashMap<Symbol, i64>,
}

#[derive(Debug, Default)]
struct ProjectSessions {
    by_interval: [BTreeMap<i64, BucketTotals>; 3],
}

#[derive(Debug, Default)]
pub(super) struct SessionViews {
    projects: HashMap<Symbol, ProjectSessions>,
}

/// A sessions question: sessions that started in `[from, to)`.
#[derive(Debug, Clone)]
pub struct SessionsQuery {
    pub project_id: String,
    pub from: i64,
    pub to: i64,
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

fn add(map: &mut HashMap<Symbol, i64>, key: Symbol, diff: i64) {
    let count = map.entry(key).or_default();
    *count += diff;
    if *count == 0 {
        map.remove(&key);
    }
}

impl SessionViews {
    pub(super) fn apply(&mut self, update: &SessionUpdate, diff: i64) {
        let s = &update.session;
        let buckets =
            &mut self.projects.entry(update.project).or_default().by_interval[interval_index(update.interval)];
        let totals = buckets.entry(update.bucket).or_default();
        totals.sessions += diff;
        totals.bounces += diff * i64::from(s.bounce());
        totals.duration_ms += diff * s.duration_ms();
        totals.pageviews += diff * i64::from(s.pageviews);
        add(&mut totals.entries, s.entry, diff);
        add(&mut totals.exits, s.exit, diff);
        if totals.sessions == 0 {
            buckets.remove(&update.bucket);
        }
    }

    fn buckets<'a>(
        &'a self,
        names: &Names,
        q: &SessionsQuery,
    ) -> impl Iterator<Item = (&'a i64, &'a BucketTotals)> + 'a {
        let interval = interval_for(q.from, q.to);
        let buckets = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p));
        let (first, to) = (interval.bucket_of(q.from), q.to);
        buckets.into_iter().flat_map(move |p| p.by_interval[interval_index(interval)].range(first..to))
    }

    pub(super) fn summary(&self, names: &Names, q: &SessionsQuery) -> SessionsSummary {
        let (mut sessions, mut bounces, mut duration, mut pageviews) = (0, 0, 0, 0);
        for (_, totals) in self.buckets(names, q) {
            sessions += totals.sessions;
            bounces += totals.bounces;
            duration += totals.duration_ms;
            pageviews += totals.pageviews;
        }
        let per_session = |n: i64| if sessions > 0 { n as f64 / sessions as f64 } else { 0.0 };
        SessionsSummary {
            sessions,
            bounce_rate: per_session(bounces),
            avg_duration_ms: per_session(duration),
            pages_per_session: per_session(pageviews),
        }
    }

    /// Sessions per entry (or exit) page in a range, most first.
    pub(super) fn pages(&self, names: &Names, q: &SessionsQuery, exits: bool) -> Vec<(Symbol, i64)> {
        let mut pages: HashMap<Symbol, i64> = HashMap::new();
        for (_, totals) in self.buckets(names, q) {
            for (&page, &count) in if exits { &totals.exits } else { &totals.entries } {
                *pages.entry(page).or_default() += count;
            }
        }
        let mut pages: Vec<(Symbol, i64)> = pages.into_iter().collect();
        pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| names.name(a.0).cmp(&names.name(b.0))));
        pages
    }
}
