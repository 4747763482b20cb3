//! The read model: view state the query API reads without touching the
//! workers, updated once per tick from consolidated dataflow output, and the
//! change feed of those updates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sightline_operators::{Interval, PageviewUpdate, Symbol, Time};
use tokio::sync::broadcast;

use crate::interner::Interner;

/// One path in one bucket.
#[derive(Debug, Default)]
struct PathCell {
    pageviews: i64,
    visitors: HashSet<u64>,
}

/// One project's page view views, per interval, per bucket start, per path.
#[derive(Debug, Default)]
struct ProjectPageviews {
    by_interval: [BTreeMap<i64, HashMap<Symbol, PathCell>>; 3],
}

fn interval_index(interval: Interval) -> usize {
    match interval {
        Interval::Minute => 0,
        Interval::Hour => 1,
        Interval::Day => 2,
    }
}

/// A change to one project's views in one tick: what `live` streams.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ViewChange {
    pub project_id: String,
    /// The tick (ms since the epoch) the change became final at.
    pub tick: Time,
    pub view: &'static str,
    /// Per minute bucket and path: how page views and visitors moved.
    pub changes: Vec<PageviewDelta>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PageviewDelta {
    pub t: i64,
    pub path: String,
    pub pageviews: i64,
    pub visitors: i64,
}

/// A page views question.
#[derive(Debug, Clone)]
pub struct PageviewsQuery {
    pub project_id: String,
    pub interval: Interval,
    /// Buckets starting at or after `from`'s bucket start...
    pub from: i64,
    /// ...and strictly before `to`.
    pub to: i64,
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageviewsTotal {
    pub pageviews: i64,
    pub visitors: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageviewsPoint {
    pub t: i64,
    pub pageviews: i64,
    pub visitors: i64,
}

/// The contract's answer to `pageviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageviewsAnswer {
    pub total: PageviewsTotal,
    pub series: Vec<PageviewsPoint>,
}

/// The most buckets one answer's series may have.
pub const MAX_SERIES_POINTS: i64 = 10_000;

/// The views, shared by the pipeline's sink (writer) and the HTTP handlers
/// (readers).
pub struct ViewStore {
    /// The strings behind the symbols in the views.
    names: Interner,
    pageviews: RwLock<HashMap<Symbol, ProjectPageviews>>,
    /// Every tick before this one is fully applied.
    applied_through: AtomicU64,
    changes: broadcast::Sender<Arc<ViewChange>>,
}

impl Default for ViewStore {
    fn default() -> Self {
        ViewStore {
            names: Interner::default(),
            pageviews: RwLock::default(),
            applied_through: AtomicU64::new(0),
            changes: broadcast::channel(4096).0,
        }
    }
}

impl ViewStore {
    /// The interner shared with the pipeline's inputs.
    pub fn names(&self) -> &Interner {
        &self.names
    }

    /// Every tick before this one is reflected in the views.
    pub fn applied_through(&self) -> Time {
        self.applied_through.load(Ordering::Acquire)
    }

    /// Subscribes to the change feed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ViewChange>> {
        self.changes.subscribe()
    }

    /// Applies the consolidated updates of all ticks before `through`.
    pub fn apply(&self, through: Time, updates: &[(PageviewUpdate, isize)]) {
        if !updates.is_empty() {
            // project → (minute, path) → (page views, visitors) moved this tick
            type Moves = BTreeMap<(i64, Symbol), (i64, i64)>;
            let mut feed: BTreeMap<Symbol, Moves> = BTreeMap::new();
            let mut views = self.pageviews.write().unwrap_or_else(|e| e.into_inner());
            for (update, diff) in updates {
                let diff = *diff as i64;
                let (key, visitor) = match update {
                    PageviewUpdate::Pageviews(key) => (key, None),
                    PageviewUpdate::Visitor(key, v) => (key, Some(*v)),
                };
                let project = views.entry(key.project).or_default();
                let buckets = &mut project.by_interval[interval_index(key.interval)];
                let paths = buckets.entry(key.bucket).or_default();
                let cell = paths.entry(key.path).or_default();
                match visitor {
                    None => cell.pageviews += diff,
                    Some(v) if diff > 0 => {
                        cell.visitors.insert(v);
                    }
                    Some(v) => {
                        cell.visitors.remove(&v);
                    }
                }
                if cell.pageviews == 0 && cell.visitors.is_empty() {
                    paths.remove(&key.path);
                    if paths.is_empty() {
                        buckets.remove(&key.bucket);
                    }
                }
                if key.interval == Interval::Minute {
                    let entry = feed.entry(key.project).or_default().entry((key.bucket, key.path)).or_default();
                    match visitor {
                        None => entry.0 += diff,
                        Some(_) => entry.1 += diff,
                    }
                }
            }
            drop(views);
            for (project, deltas) in feed {
                let change = ViewChange {
                    project_id: self.names.name(project).to_string(),
                    tick: through.saturating_sub(1),
                    view: "pageviews",
                    changes: deltas
                        .into_iter()
                        .map(|((t, path), (pageviews, visitors))| PageviewDelta {
                            t,
                            path: self.names.name(path).to_string(),
                            pageviews,
                            visitors,
                        })
                        .collect(),
                };
                // No subscribers is fine: nobody is watching.
                let _ = self.changes.send(Arc::new(change));
            }
        }
        self.applied_through.fetch_max(through, Ordering::AcqRel);
    }

    /// Page views and distinct visitors over a range, with a series per bucket.
    pub fn pageviews(&self, q: &PageviewsQuery) -> PageviewsAnswer {
        let width = q.interval.millis();
        let first = q.interval.bucket_of(q.from);
        let views = self.pageviews.read().unwrap_or_else(|e| e.into_inner());
        let mut series = Vec::new();
        let mut total_pageviews = 0;
        let mut all_visitors: HashSet<u64> = HashSet::new();
        let project = self.names.lookup(&q.project_id);
        let buckets = project.and_then(|p| views.get(&p)).map(|p| &p.by_interval[interval_index(q.interval)]);
        // A path never seen matches nothing.
        let path = q.path.as_deref().map(|p| self.names.lookup(p).unwrap_or(Symbol::MAX));
        let mut cursor = first;
        let push_empty_until = |series: &mut Vec<PageviewsPoint>, end: i64, cursor: &mut i64| {
            while *cursor < end {
                series.push(PageviewsPoint { t: *cursor, pageviews: 0, visitors: 0 });
                *cursor += width;
            }
        };
        if let Some(buckets) = buckets {
            for (&t, paths) in buckets.range(first..q.to) {
                push_empty_until(&mut series, t, &mut cursor);
                let mut pageviews = 0;
                let mut visitors: HashSet<u64> = HashSet::new();
                let cells = paths.iter().filter(|(p, _)| path.is_none_or(|wanted| wanted == **p));
                for (_, cell) in cells {
                    pageviews += cell.pageviews;
                    visitors.extend(cell.visitors.iter().copied());
                }
                total_pageviews += pageviews;
                series.push(PageviewsPoint { t, pageviews, visitors: visitors.len() as i64 });
                all_visitors.extend(visitors);
                cursor = t + width;
            }
        }
        push_empty_until(&mut series, q.to, &mut cursor);
        PageviewsAnswer {
            total: PageviewsTotal { pageviews: total_pageviews, visitors: all_visitors.len() as i64 },
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use sightline_operators::BucketKey;

    use super::*;

    fn key(views: &ViewStore, interval: Interval, bucket: i64, path: &str) -> BucketKey {
        BucketKey { project: views.names().intern("p"), interval, bucket, path: views.names().intern(path) }
    }

    #[test]
    fn answers_sum_buckets_and_union_visitors() {
        let views = ViewStore::default();
        let mut feed = views.subscribe();
        let m = Interval::Minute;
        views.apply(
            10,
            &[
                (PageviewUpdate::Pageviews(key(&views, m, 0, "/a")), 3),
                (PageviewUpdate::Visitor(key(&views, m, 0, "/a"), 1), 1),
                (PageviewUpdate::Visitor(key(&views, m, 0, "/a"), 2), 1),
                (PageviewUpdate::Pageviews(key(&views, m, 120_000, "/b")), 2),
                (PageviewUpdate::Visitor(key(&views, m, 120_000, "/b"), 2), 1),
            ],
        );
        assert_eq!(views.applied_through(), 10);
        let q = PageviewsQuery { project_id: "p".into(), interval: m, from: 0, to: 180_000, path: None };
        let answer = views.pageviews(&q);
        assert_eq!(answer.total, PageviewsTotal { pageviews: 5, visitors: 2 });
        assert_eq!(
            answer.series,
            vec![
                PageviewsPoint { t: 0, pageviews: 3, visitors: 2 },
                PageviewsPoint { t: 60_000, pageviews: 0, visitors: 0 },
                PageviewsPoint { t: 120_000, pageviews: 2, visitors: 1 },
            ]
        );
        let only_b = views.pageviews(&PageviewsQuery { path: Some("/b".into()), ..q.clone() });
        assert_eq!(only_b.total, PageviewsTotal { pageviews: 2, visitors: 1 });
        let change = feed.try_recv().unwrap();
        assert_eq!(change.changes.len(), 2);
        // Retractions empty the cells again.
        views.apply(
            11,
            &[
                (PageviewUpdate::Pageviews(key(&views, m, 0, "/a")), -3),
                (PageviewUpdate::Visitor(key(&views, m, 0, "/a"), 1), -1),
            ],
        );
        let answer = views.pageviews(&q);
        assert_eq!(answer.series[0], PageviewsPoint { t: 0, pageviews: 0, visitors: 1 });
        assert_eq!(views.pageviews(&PageviewsQuery { project_id: "other".into(), ..q }).total.pageviews, 0);
    }
}
