//! The page views read model: counts and visitor sets per project,
//! interval, bucket, path and the other dimensions (device, browser, OS,
//! referrer). A series point or total unions the visitor sets of the cells
//! the filters keep; a breakdown groups the same cells by one dimension.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sightline_operators::{Interval, PageDims, PageviewUpdate, Signal, SignalRow, Symbol};

use super::{Names, interval_index};

/// One path with one set of dimensions in one bucket.
#[derive(Debug, Default)]
struct PathCell {
    pageviews: i64,
    visitors: HashSet<u64>,
}

/// One project's page views, per interval, per bucket start, per path.
#[derive(Debug, Default)]
struct ProjectPageviews {
    by_interval: [BTreeMap<i64, Cells>; 3],
}

/// The cells of one bucket, by path and dimensions.
type Cells = HashMap<(Symbol, PageDims), PathCell>;

/// All projects' page views.
#[derive(Debug, Default)]
pub(super) struct PageviewViews {
    projects: HashMap<Symbol, ProjectPageviews>,
}

impl PageviewViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }

    /// A project's page views of the minutes since `since` as alert
    /// signals, each at its minute's start.
    pub(super) fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let Some(p) = self.projects.get(&project) else {
            return Vec::new();
        };
        let minutes = p.by_interval[super::interval_index(Interval::Minute)].range(since..);
        let cells = minutes.flat_map(|(bucket, cells)| cells.iter().map(move |(key, cell)| (*bucket, key, cell)));
        cells
            .map(|(bucket, (path, dims), cell)| {
                let signal = SignalRow {
                    project,
                    received_s: bucket.div_euclid(1000),
                    signal: Signal::Pageview,
                    path: *path,
                    release: dims.release,
                    device: dims.device,
                };
                (signal, cell.pageviews as isize)
            })
            .collect()
    }
}

/// How one minute bucket of one path moved in a tick (the live feed).
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
    pub filters: PageFilters,
}

/// Filters every page views question can combine.
#[derive(Debug, Clone, Default)]
pub struct PageFilters {
    pub path: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    /// A referring domain; the empty string for direct visits.
    pub referrer: Option<String>,
    pub release: Option<String>,
}

/// Filters as symbols; a value never seen is `Symbol::MAX` and matches
/// nothing.
pub(super) struct Resolved([Option<Symbol>; 6]);

impl Resolved {
    pub(super) fn new(names: &Names, f: &PageFilters) -> Resolved {
        let resolve = |v: &Option<String>| v.as_deref().map(|v| names.lookup(v).unwrap_or(Symbol::MAX));
        let (path, device, browser, os) = (resolve(&f.path), resolve(&f.device), resolve(&f.browser), resolve(&f.os));
        Resolved([path, device, browser, os, resolve(&f.referrer), resolve(&f.release)])
    }

    pub(super) fn matches(&self, (path, dims): &(Symbol, PageDims)) -> bool {
        let have = [*path, dims.device, dims.browser, dims.os, dims.referrer, dims.release];
        self.0.iter().zip(have).all(|(want, have)| want.is_none_or(|w| w == have))
    }
}

/// What a breakdown groups page views by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDimension {
    Page,
    Referrer,
    Device,
    Browser,
    Os,
    Release,
}

impl PageDimension {
    fn of(self, (path, dims): &(Symbol, PageDims)) -> Symbol {
        match self {
            PageDimension::Page => *path,
            PageDimension::Referrer => dims.referrer,
            PageDimension::Device => dims.device,
            PageDimension::Browser => dims.browser,
            PageDimension::Os => dims.os,
            PageDimension::Release => dims.release,
        }
    }
}

/// One row of a breakdown: visitors and page views for pages, referrers,
/// devices, browsers and operating systems; sessions for entry and exit
/// pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakdownRow {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitors: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pageviews: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<i64>,
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

/// Per project: (minute, path) → (page views, visitors) moved this tick.
pub(super) type PageviewMoves = BTreeMap<Symbol, BTreeMap<(i64, Symbol), (i64, i64)>>;

impl PageviewViews {
    pub(super) fn apply(&mut self, update: &PageviewUpdate, diff: i64, moves: &mut PageviewMoves) {
        let (key, visitor) = match update {
            PageviewUpdate::Pageviews(key) => (key, None),
            PageviewUpdate::Visitor(key, v) => (key, Some(*v)),
        };
        let project = self.projects.entry(key.project).or_default();
        let buckets = &mut project.by_interval[interval_index(key.interval)];
        let paths = buckets.entry(key.bucket).or_default();
        let cell = paths.entry((key.path, key.dims)).or_default();
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
            paths.remove(&(key.path, key.dims));
            if paths.is_empty() {
                buckets.remove(&key.bucket);
            }
        }
        if key.interval == Interval::Minute {
            let entry = moves.entry(key.project).or_default().entry((key.bucket, key.path)).or_default();
            match visitor {
                None => entry.0 += diff,
                Some(_) => entry.1 += diff,
            }
        }
    }

    pub(super) fn answer(&self, names: &Names, q: &PageviewsQuery) -> PageviewsAnswer {
        let width = q.interval.millis();
        let first = q.interval.bucket_of(q.from);
        let buckets = names
            .lookup(&q.project_id)
            .and_then(|p| self.projects.get(&p))
            .map(|p| &p.by_interval[interval_index(q.interval)]);
        let filters = Resolved::new(names, &q.filters);
        let mut series = Vec::new();
        let mut total_pageviews = 0;
        let mut all_visitors: HashSet<u64> = HashSet::new();
        let mut cursor = first;
        let fill_until = |series: &mut Vec<PageviewsPoint>, end: i64, cursor: &mut i64| {
            while *cursor < end {
                series.push(PageviewsPoint { t: *cursor, pageviews: 0, visitors: 0 });
                *cursor += width;
            }
        };
        if let Some(buckets) = buckets {
            for (&t, paths) in buckets.range(first..q.to) {
                fill_until(&mut series, t, &mut cursor);
                let mut pageviews = 0;
                let mut visitors: HashSet<u64> = HashSet::new();
                for (_, cell) in paths.iter().filter(|(cell, _)| filters.matches(cell)) {
                    pageviews += cell.pageviews;
                    visitors.extend(cell.visitors.iter().copied());
                }
                total_pageviews += pageviews;
                series.push(PageviewsPoint { t, pageviews, visitors: visitors.len() as i64 });
                all_visitors.extend(visitors);
                cursor = t + width;
            }
        }
        fill_until(&mut series, q.to, &mut cursor);
        PageviewsAnswer {
            total: PageviewsTotal { pageviews: total_pageviews, visitors: all_visitors.len() as i64 },
            series,
        }
    }

    /// Page views and distinct visitors per value of `dimension` over a
    /// range, most visitors first.
    pub(super) fn breakdown(&self, names: &Names, q: &PageviewsQuery, dimension: PageDimension) -> Vec<BreakdownRow> {
        let filters = Resolved::new(names, &q.filters);
        let mut rows: HashMap<Symbol, (i64, HashSet<u64>)> = HashMap::new();
        if let Some(buckets) = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p)) {
            let buckets = &buckets.by_interval[interval_index(q.interval)];
            for (_, cells) in buckets.range(q.interval.bucket_of(q.from)..q.to) {
                for (cell, counts) in cells.iter().filter(|(cell, _)| filters.matches(cell)) {
                    let (pageviews, visitors) = rows.entry(dimension.of(cell)).or_default();
                    *pageviews += counts.pageviews;
                    visitors.extend(counts.visitors.iter().copied());
                }
            }
        }
        let mut rows: Vec<BreakdownRow> = rows
            .into_iter()
            .map(|(value, (pageviews, visitors))| BreakdownRow {
                value: names.name(value).to_string(),
                visitors: Some(visitors.len() as i64),
                pageviews: Some(pageviews),
                sessions: None,
            })
            .collect();
        rows.sort_by(|a, b| (b.visitors, b.pageviews, &a.value).cmp(&(a.visitors, a.pageviews, &b.value)));
        rows
    }

    /// Distinct visitors with a page view in the minute buckets from
    /// `since` on.
    pub(super) fn visitors_since(&self, project: Symbol, since: i64) -> i64 {
        let Some(p) = self.projects.get(&project) else {
            return 0;
        };
        let minutes = &p.by_interval[interval_index(Interval::Minute)];
        let visitors: HashSet<u64> = minutes
            .range(Interval::Minute.bucket_of(since)..)
            .flat_map(|(_, cells)| cells.values().flat_map(|c| c.visitors.iter().copied()))
            .collect();
        visitors.len() as i64
    }

    /// Page views per bucket of a project, for rates against other views.
    pub(super) fn counts(&self, project: Symbol, interval: Interval, from: i64, to: i64) -> BTreeMap<i64, i64> {
        self.projects
            .get(&project)
            .map(|p| {
                p.by_interval[interval_index(interval)]
                    .range(interval.bucket_of(from)..to)
                    .map(|(&t, paths)| (t, paths.values().map(|c| c.pageviews).sum()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use sightline_operators::{BucketKey, PageDims};

    use super::super::{ViewStore, ViewUpdate};
    use super::*;

    fn bucket_key(views: &ViewStore, interval: Interval, bucket: i64, path: &str, browser: &str) -> BucketKey {
        let names = views.names();
        let dims = PageDims { browser: names.intern(browser), ..PageDims::default() };
        BucketKey { project: names.intern("p"), interval, bucket, path: names.intern(path), dims }
    }

    fn key(views: &ViewStore, interval: Interval, bucket: i64, path: &str) -> ViewUpdate {
        ViewUpdate::Pageview(PageviewUpdate::Pageviews(bucket_key(views, interval, bucket, path, "Firefox")))
    }

    fn visitor(views: &ViewStore, interval: Interval, bucket: i64, path: &str, v: u64) -> ViewUpdate {
        ViewUpdate::Pageview(PageviewUpdate::Visitor(bucket_key(views, interval, bucket, path, "Firefox"), v))
    }

    #[test]
    fn answers_sum_buckets_and_union_visitors() {
        let views = ViewStore::default();
        let mut feed = views.subscribe();
        let m = Interval::Minute;
        views.apply(
            10,
            &[
                (key(&views, m, 0, "/a"), 3),
                (visitor(&views, m, 0, "/a", 1), 1),
                (visitor(&views, m, 0, "/a", 2), 1),
                (key(&views, m, 120_000, "/b"), 2),
                (visitor(&views, m, 120_000, "/b", 2), 1),
            ],
        );
        assert_eq!(views.applied_through(), 10);
        let q = PageviewsQuery {
            project_id: "p".into(),
            interval: m,
            from: 0,
            to: 180_000,
            filters: PageFilters::default(),
        };
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
        let only_b = PageFilters { path: Some("/b".into()), ..PageFilters::default() };
        let only_b = views.pageviews(&PageviewsQuery { filters: only_b, ..q.clone() });
        assert_eq!(only_b.total, PageviewsTotal { pageviews: 2, visitors: 1 });
        let change = feed.try_recv().unwrap();
        assert_eq!(change.view(), "pageviews");
        assert_eq!(serde_json::to_value(&*change).unwrap()["changes"].as_array().unwrap().len(), 2);
        // Retractions empty the cells again.
        views.apply(11, &[(key(&views, m, 0, "/a"), -3), (visitor(&views, m, 0, "/a", 1), -1)]);
        let answer = views.pageviews(&q);
        assert_eq!(answer.series[0], PageviewsPoint { t: 0, pageviews: 0, visitors: 1 });
        assert_eq!(views.pageviews(&PageviewsQuery { project_id: "other".into(), ..q }).total.pageviews, 0);
    }
}
