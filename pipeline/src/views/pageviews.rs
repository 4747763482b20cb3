//! The page views read model: page view counts and visitor sketches per
//! project, interval, bucket, path and the other dimensions (device,
//! browser, OS, referrer, release), with each bucket's rollups per value of
//! each dimension and in total. A question with at most one filter reads
//! the rollups; with more it merges the sketches of the cells the filters
//! keep; a breakdown groups the same rollups or cells by one dimension.
//! Minute buckets keep their page views one by one instead of cells, and
//! only the page rollup, until they are sealed.
//!
//! Each project also keeps its pages' rollups per six-hour block of hour
//! buckets, so that ranking pages over a day merges each page's sketches
//! about ten times instead of 24.
//!
//! A bucket is dropped whole once it has been out of the retention window:
//! visitor sketches only grow, so nothing is ever taken out of one.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{Interval, PageDims, PageviewRow, Signal, SignalRow, Symbol, Time};

use super::cells::{Cell, Cells};
use super::sketch::{VisitorSketch, prefix};
use super::{CellMap, KEPT, Names, Sealing, drop_expired, expired, in_window_buckets, interval_index, seal_ended};

/// Page views and visitors of one cell: a path with one set of dimensions,
/// a path, or a whole bucket.
#[derive(Debug, Default, Clone)]
struct PathCell {
    pageviews: i64,
    visitors: VisitorSketch,
}

impl PathCell {
    fn add(&mut self, visitor: u64, diff: i64) {
        self.pageviews += diff;
        if diff > 0 {
            self.visitors.insert(visitor);
        }
    }

    fn merge(&mut self, other: &PathCell) {
        self.pageviews += other.pageviews;
        self.visitors.merge(&other.visitors);
    }
}

impl Cell for PathCell {
    fn is_empty(&self) -> bool {
        self.pageviews <= 0
    }

    fn seal(&mut self) {
        self.visitors.shrink();
    }
}

/// A set of page dimensions as a small id, from a [`DimsTable`].
pub(super) type DimsId = u32;

/// Each distinct set of dimensions seen, by id: cells key on (path, id),
/// 8 bytes where the page dimensions themselves took 24 (a third of a page
/// view cell's table). Sets are few (the devices × browsers × systems ×
/// referrers × releases that occur together) and never forgotten.
#[derive(Debug)]
pub(super) struct DimsTable<D = PageDims> {
    ids: CellMap<D, DimsId>,
    sets: Vec<D>,
}

impl<D> Default for DimsTable<D> {
    fn default() -> Self {
        DimsTable { ids: CellMap::default(), sets: Vec::new() }
    }
}

impl<D: Copy + Eq + std::hash::Hash> DimsTable<D> {
    /// The id of `dims`, made on first sight.
    pub(super) fn id(&mut self, dims: D) -> DimsId {
        *self.ids.entry(dims).or_insert_with(|| {
            self.sets.push(dims);
            DimsId::try_from(self.sets.len() - 1).expect("fewer than 2^32 sets of dimensions")
        })
    }

    /// The dimensions of an id.
    pub(super) fn get(&self, id: DimsId) -> D {
        self.sets[id as usize]
    }
}

impl DimsTable<PageDims> {
    /// A cell's path and dimensions.
    pub(super) fn cell(&self, (path, id): &(Symbol, DimsId)) -> (Symbol, PageDims) {
        (*path, self.get(*id))
    }
}

/// One page view of a minute bucket: its path, dimensions and visitor
/// ([`prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MinuteView {
    path: Symbol,
    dims: DimsId,
    visitor: u32,
}

impl MinuteView {
    fn key(&self) -> (Symbol, DimsId) {
        (self.path, self.dims)
    }
}

/// One bucket of one project: its cells and their rollups.
#[derive(Debug, Default)]
struct Bucket {
    total: PathCell,
    /// Per value of each dimension, by [`PageDimension::index`]; only those
    /// [`rolled_up`] for the bucket's interval, and none once a minute is
    /// sealed ([`Bucket::has_rollup`]).
    by: [Cells<Symbol, PathCell>; 6],
    /// Per (path, dimensions): hour buckets.
    cells: Cells<(Symbol, DimsId), PathCell>,
    /// Each page view, as it came: minute buckets. A minute's cells held
    /// one page view each, mostly (4.77M cells for 7M page views at 10M
    /// events), at about 45 bytes each in a hash table where a page view
    /// takes 12 here; questions scan them as they scanned the cells.
    views: Vec<MinuteView>,
    sealed: bool,
}

/// Whether buckets of `interval` keep a rollup per value of `dimension`.
/// Minute buckets keep only the page's (the live feed's visitors per minute
/// and page): a minute's page views are few enough to scan, and its other
/// rollups took a fifth of the updates a page view makes.
fn rolled_up(interval: Interval, dimension: PageDimension) -> bool {
    interval != Interval::Minute || dimension == PageDimension::Page
}

impl Bucket {
    /// Gives back the room a bucket kept for more page views. A minute
    /// drops its page rollup: it served the live feed while the minute was
    /// taking page views, and its page views answer questions (2.65M
    /// rollup cells at 10M events).
    fn seal(interval: Interval, bucket: &mut Bucket) {
        if interval == Interval::Minute {
            bucket.by = Default::default();
        }
        bucket.by.iter_mut().for_each(Cells::seal);
        bucket.cells.seal();
        bucket.views.shrink_to_fit();
        bucket.sealed = true;
    }

    /// Whether the bucket has a rollup per value of `dimension`.
    fn has_rollup(&self, interval: Interval, dimension: PageDimension) -> bool {
        rolled_up(interval, dimension) && !(interval == Interval::Minute && self.sealed)
    }

    /// Whether the minute has a page view of `path` by `visitor` (a
    /// [`prefix`]).
    fn has_view(&self, path: Symbol, visitor: u32) -> bool {
        self.views.iter().any(|view| view.path == path && view.visitor == visitor)
    }

    /// Adds a bucket's page views and visitors that pass `filters` to `into`,
    /// from the smallest set of cells that answers it.
    fn fold(&self, interval: Interval, filters: &Resolved, dims: &DimsTable, into: &mut PathCell) {
        match filters.single() {
            Some(None) => into.merge(&self.total),
            Some(Some((dimension, value))) if self.has_rollup(interval, dimension) => {
                if let Some(cell) = self.by[dimension.index()].get(&value) {
                    into.merge(cell);
                }
            }
            _ => {
                for (_, cell) in self.cells.iter().filter(|(key, _)| filters.matches(&dims.cell(key))) {
                    into.merge(cell);
                }
                for view in self.views.iter().filter(|view| filters.matches(&dims.cell(&view.key()))) {
                    into.pageviews += 1;
                    into.visitors.insert_prefix(view.visitor);
                }
            }
        }
    }

    /// Calls `visit` with each (value of `dimension`, cell) of the bucket that
    /// passes `filters`: from the dimension's rollup when at most a filter
    /// on the same dimension is set (and the bucket keeps it).
    fn grouped(
        &self,
        interval: Interval,
        filters: &Resolved,
        dims: &DimsTable,
        dimension: PageDimension,
        visit: &mut impl FnMut(Symbol, &PathCell),
    ) {
        match filters.only(dimension) {
            Some(only) if self.has_rollup(interval, dimension) => {
                for (value, cell) in self.by[dimension.index()].iter() {
                    if only.is_none_or(|o| o == *value) {
                        visit(*value, cell);
                    }
                }
            }
            _ => {
                for (key, cell) in self.cells.iter() {
                    let key = dims.cell(key);
                    if filters.matches(&key) {
                        visit(dimension.of(&key), cell);
                    }
                }
                let mut grouped: CellMap<Symbol, PathCell> = CellMap::default();
                for view in &self.views {
                    let key = dims.cell(&view.key());
                    if filters.matches(&key) {
                        let cell = grouped.entry(dimension.of(&key)).or_default();
                        cell.pageviews += 1;
                        cell.visitors.insert_prefix(view.visitor);
                    }
                }
                grouped.iter().for_each(|(value, cell)| visit(*value, cell));
            }
        }
    }
}

/// One project's page views, per interval, per bucket start.
#[derive(Debug, Default)]
struct ProjectPageviews {
    by_interval: [BTreeMap<i64, Bucket>; KEPT],
    /// Per block start, each page's hour buckets of the block merged.
    page_blocks: BTreeMap<i64, Cells<Symbol, PathCell>>,
    sealing: Sealing,
    /// The start from which blocks are not sealed yet.
    blocks_unsealed_from: i64,
}

/// Six hours: a block of hour buckets.
const BLOCK_MS: i64 = 6 * 3_600_000;

/// Whether a block has left the window: with its first hour, so that a block
/// is only ever read while all its hours are still held.
fn block_expired(block: i64, through: Time, retention_ms: i64) -> bool {
    expired(Interval::Hour, block, through, retention_ms)
}

impl ProjectPageviews {
    /// Calls `visit` with the page rollups that make up the hour buckets
    /// starting from `first` (an hour's start) and before `to`: a whole
    /// block where the range holds all six of its hours, else the hour's own.
    fn page_rollups<'a>(&'a self, first: i64, to: i64, visit: &mut impl FnMut(&'a Cells<Symbol, PathCell>)) {
        let hour = Interval::Hour.millis();
        let hours = &self.by_interval[interval_index(Interval::Hour)];
        // Steps from held hour to held hour, so a range far wider than the
        // data costs nothing.
        let mut t = first;
        while t < to
            && let Some((&start, bucket)) = hours.range(t..to).next()
        {
            let block = start.div_euclid(BLOCK_MS) * BLOCK_MS;
            let whole = block >= first && block + BLOCK_MS - hour < to;
            if whole && let Some(rollups) = self.page_blocks.get(&block) {
                visit(rollups);
                t = block + BLOCK_MS;
            } else {
                visit(&bucket.by[PageDimension::Page.index()]);
                t = start + hour;
            }
        }
    }
}

/// All projects' page views.
#[derive(Debug, Default)]
pub(super) struct PageviewViews {
    projects: HashMap<Symbol, ProjectPageviews>,
    dims: DimsTable,
}

impl PageviewViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }

    /// Drops the buckets that left the window by the tick `through`, and
    /// seals those that ended.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        for project in self.projects.values_mut() {
            project.sealing.seal_ended(&mut project.by_interval, Bucket::seal);
            let latest = project.sealing.latest;
            seal_ended(&mut project.page_blocks, BLOCK_MS, &mut project.blocks_unsealed_from, latest, &mut Cells::seal);
            drop_expired(&mut project.by_interval, through, retention_ms);
            while let Some(oldest) = project.page_blocks.first_entry() {
                if !block_expired(*oldest.key(), through, retention_ms) {
                    break;
                }
                oldest.remove();
            }
        }
        self.projects.retain(|_, p| p.by_interval.iter().any(|b| !b.is_empty()));
    }

    /// A project's page views of the minutes since `since` as alert
    /// signals, each at its minute's start.
    pub(super) fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let Some(p) = self.projects.get(&project) else {
            return Vec::new();
        };
        let minutes = p.by_interval[super::interval_index(Interval::Minute)].range(since..);
        let mut signals: BTreeMap<SignalRow, isize> = BTreeMap::new();
        for (start, bucket) in minutes {
            for view in &bucket.views {
                let (path, dims) = self.dims.cell(&view.key());
                let signal = SignalRow {
                    project,
                    received_s: start.div_euclid(1000),
                    signal: Signal::Pageview,
                    path,
                    release: dims.release,
                    device: dims.device,
                };
                *signals.entry(signal).or_default() += 1;
            }
        }
        signals.into_iter().collect()
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

    /// No filter is set.
    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// Whether a grouping by `dimension` can read that dimension's rollup:
    /// `Some(None)` without filters, `Some(Some(value))` with a filter on the
    /// same dimension only, `None` otherwise.
    fn only(&self, dimension: PageDimension) -> Option<Option<Symbol>> {
        match self.single() {
            Some(None) => Some(None),
            Some(Some((filtered, value))) if filtered == dimension => Some(Some(value)),
            _ => None,
        }
    }

    /// `Some(None)` without filters, `Some(Some(_))` with exactly one (its
    /// dimension and value), `None` with more.
    fn single(&self) -> Option<Option<(PageDimension, Symbol)>> {
        let mut set = PageDimension::ALL.into_iter().filter_map(|d| self.0[d.index()].map(|v| (d, v)));
        match (set.next(), set.next()) {
            (None, _) => Some(None),
            (Some(one), None) => Some(Some(one)),
            _ => None,
        }
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
    const ALL: [PageDimension; 6] = [
        PageDimension::Page,
        PageDimension::Device,
        PageDimension::Browser,
        PageDimension::Os,
        PageDimension::Referrer,
        PageDimension::Release,
    ];

    /// Its place among the filters (`Resolved`) and a bucket's rollups.
    fn index(self) -> usize {
        match self {
            PageDimension::Page => 0,
            PageDimension::Device => 1,
            PageDimension::Browser => 2,
            PageDimension::Os => 3,
            PageDimension::Referrer => 4,
            PageDimension::Release => 5,
        }
    }

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
    /// Adds `diff` page views of a visitor to its cell and the cell's
    /// rollups in its bucket of each interval, unless that bucket has
    /// already left the window.
    pub(super) fn apply(
        &mut self,
        row: &PageviewRow,
        diff: i64,
        through: Time,
        retention_ms: i64,
        moves: &mut PageviewMoves,
    ) {
        let dims = self.dims.id(row.dims);
        let project = self.projects.entry(row.project).or_default();
        project.sealing.note(row.ts, through);
        in_window_buckets(&mut project.by_interval, row.ts, (through, retention_ms), |interval, start, buckets| {
            let bucket = buckets.entry(start).or_default();
            bucket.total.add(row.visitor, diff);
            let mut visitors_moved = 0;
            let kept = PageDimension::ALL.map(|d| bucket.has_rollup(interval, d));
            for dimension in PageDimension::ALL.into_iter().filter(|d| kept[d.index()]) {
                let value = dimension.of(&(row.path, row.dims));
                bucket.by[dimension.index()].update(value, |cell| {
                    // The live feed's visitors per (minute, path).
                    if interval == Interval::Minute && dimension == PageDimension::Page {
                        let before = cell.visitors.count();
                        cell.add(row.visitor, diff);
                        visitors_moved = cell.visitors.count() - before;
                    } else {
                        cell.add(row.visitor, diff);
                    }
                });
            }
            if interval == Interval::Minute {
                let view = MinuteView { path: row.path, dims, visitor: prefix(row.visitor) };
                // A sealed minute's live feed counts from its page views.
                let had = bucket.sealed && bucket.has_view(view.path, view.visitor);
                if diff > 0 {
                    // A late page view into a sealed minute grows its list by
                    // a sixteenth, not double (doubling held 159 MB of lists
                    // where their page views took 84, at 10M events).
                    let (len, added) = (bucket.views.len(), diff as usize);
                    if bucket.sealed && len + added > bucket.views.capacity() {
                        bucket.views.reserve_exact(added.max(len / 16));
                    }
                    bucket.views.extend(std::iter::repeat_n(view, added));
                } else {
                    // A retraction (the pipeline sends none today) takes out
                    // as many of the same page view.
                    for _ in 0..diff.unsigned_abs() {
                        if let Some(at) = bucket.views.iter().position(|v| *v == view) {
                            bucket.views.swap_remove(at);
                        }
                    }
                }
                if bucket.sealed {
                    visitors_moved = i64::from(bucket.has_view(view.path, view.visitor)) - i64::from(had);
                }
            } else {
                bucket.cells.update((row.path, dims), |cell| cell.add(row.visitor, diff));
            }
            if bucket.total.pageviews <= 0 {
                buckets.remove(&start);
            }
            if interval == Interval::Hour
                && let block_start = start.div_euclid(BLOCK_MS) * BLOCK_MS
                && !block_expired(block_start, through, retention_ms)
            {
                let block = project.page_blocks.entry(block_start).or_default();
                block.update(row.path, |page| page.add(row.visitor, diff));
                if diff < 0 && block.is_empty() {
                    project.page_blocks.remove(&block_start);
                }
            }
            if interval == Interval::Minute {
                let entry = moves.entry(row.project).or_default().entry((start, row.path)).or_default();
                entry.0 += diff;
                entry.1 += visitors_moved;
            }
        });
    }

    pub(super) fn answer(&self, names: &Names, q: &PageviewsQuery) -> PageviewsAnswer {
        let width = q.interval.millis();
        let first = q.interval.bucket_of(q.from);
        let filters = Resolved::new(names, &q.filters);
        // Each point from its bucket, or from its hours' for a day.
        let mut points: BTreeMap<i64, PathCell> = BTreeMap::new();
        let project = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p));
        if let Some(project) = project {
            let interval = q.interval.kept();
            for (&start, bucket) in project.by_interval[interval_index(interval)].range(first..q.to) {
                let point = points.entry(q.interval.bucket_of(start)).or_default();
                bucket.fold(interval, &filters, &self.dims, point);
            }
        }
        let mut series = Vec::new();
        let mut all = PathCell::default();
        let mut t = first;
        while t < q.to {
            let point = points.remove(&t).unwrap_or_default();
            series.push(PageviewsPoint { t, pageviews: point.pageviews, visitors: point.visitors.count() });
            all.merge(&point);
            t += width;
        }
        PageviewsAnswer { total: PageviewsTotal { pageviews: all.pageviews, visitors: all.visitors.count() }, series }
    }

    /// Page views and distinct visitors per value of `dimension` over a
    /// range: the `limit` values with the most visitors, most first.
    ///
    /// Merging every value's sketches over every bucket took most of the
    /// time, so it is done only for values that can make the cut. A value
    /// has at most as many visitors as page views, which its cells hold
    /// inline: the values with the most page views are merged first, then
    /// those whose page views reach the `limit`-th most visitors found.
    /// (Bounding each value by its cells' visitors instead read every
    /// cell's sketch, a cache miss each: two thirds of the question at 10M
    /// events.)
    pub(super) fn breakdown(
        &self,
        names: &Names,
        q: &PageviewsQuery,
        dimension: PageDimension,
        limit: usize,
    ) -> Vec<BreakdownRow> {
        let filters = Resolved::new(names, &q.filters);
        let Some(project) = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p)) else {
            return Vec::new();
        };
        if limit == 0 {
            return Vec::new();
        }
        let first = q.interval.bucket_of(q.from);
        // Calls `visit` with each (value, cell) of the range: whole blocks of
        // page rollups where they can answer, else the buckets'.
        let each = |visit: &mut dyn FnMut(Symbol, &PathCell)| match filters.only(dimension) {
            Some(only) if q.interval.kept() == Interval::Hour && dimension == PageDimension::Page => {
                project.page_rollups(first, q.to, &mut |pages| {
                    for (value, cell) in pages.iter().filter(|(value, _)| only.is_none_or(|o| o == **value)) {
                        visit(*value, cell);
                    }
                });
            }
            _ => {
                let interval = q.interval.kept();
                for (_, bucket) in project.by_interval[interval_index(interval)].range(first..q.to) {
                    bucket.grouped(interval, &filters, &self.dims, dimension, &mut &mut *visit);
                }
            }
        };
        let mut pageviews: CellMap<Symbol, i64> = CellMap::default();
        each(&mut |value, cell| *pageviews.entry(value).or_default() += cell.pageviews);
        let mut by_pageviews: Vec<(Symbol, i64)> = pageviews.into_iter().filter(|(_, n)| *n > 0).collect();
        by_pageviews.sort_unstable_by_key(|(_, pageviews)| std::cmp::Reverse(*pageviews));
        // Merges the cells of `values`: (value, page views, visitors) each.
        let merge = |values: &[(Symbol, i64)]| {
            let mut rows: CellMap<Symbol, PathCell> =
                values.iter().map(|(value, _)| (*value, PathCell::default())).collect();
            each(&mut |value, cell| {
                if let Some(row) = rows.get_mut(&value) {
                    row.merge(cell);
                }
            });
            rows.into_iter().map(|(value, row)| (value, row.pageviews, row.visitors.count())).collect::<Vec<_>>()
        };
        let leaders = by_pageviews.len().min(2 * limit);
        let mut rows = merge(&by_pageviews[..leaders]);
        let mut visitors: Vec<i64> = rows.iter().map(|(_, _, visitors)| *visitors).collect();
        let cut =
            if visitors.len() >= limit { *visitors.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a)).1 } else { 0 };
        // A sketch's count is within a few % of the truth: keep a margin.
        let rest = by_pageviews[leaders..].partition_point(|(_, pageviews)| pageviews * 100 >= cut * 95);
        rows.extend(merge(&by_pageviews[leaders..leaders + rest]));
        let mut rows: Vec<BreakdownRow> = rows
            .into_iter()
            .map(|(value, pageviews, visitors)| BreakdownRow {
                value: names.name(value).to_string(),
                visitors: Some(visitors),
                pageviews: Some(pageviews),
                sessions: None,
            })
            .collect();
        rows.sort_by(|a, b| (b.visitors, b.pageviews, &a.value).cmp(&(a.visitors, a.pageviews, &b.value)));
        rows.truncate(limit);
        rows
    }

    /// Distinct visitors with a page view in the minute buckets from
    /// `since` on.
    pub(super) fn visitors_since(&self, project: Symbol, since: i64) -> i64 {
        let Some(p) = self.projects.get(&project) else {
            return 0;
        };
        let minutes = &p.by_interval[interval_index(Interval::Minute)];
        let mut visitors = VisitorSketch::default();
        for (_, bucket) in minutes.range(Interval::Minute.bucket_of(since)..) {
            visitors.merge(&bucket.total.visitors);
        }
        visitors.count()
    }

    /// Page views per bucket of a project, for rates against other views.
    pub(super) fn counts(&self, project: Symbol, interval: Interval, from: i64, to: i64) -> BTreeMap<i64, i64> {
        let mut counts = BTreeMap::new();
        if let Some(p) = self.projects.get(&project) {
            for (&t, bucket) in p.by_interval[interval_index(interval.kept())].range(interval.bucket_of(from)..to) {
                *counts.entry(interval.bucket_of(t)).or_default() += bucket.total.pageviews;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ViewStore, ViewUpdate};
    use super::*;

    /// A page view at `ts` of visitor `v`.
    fn hit(views: &ViewStore, ts: i64, path: &str, browser: &str, v: u64) -> ViewUpdate {
        let names = views.names();
        let dims = PageDims { browser: names.intern(browser), device: names.intern("desktop"), ..PageDims::default() };
        // Visitors are hashes of their ids, as ingest makes them.
        let visitor = xxhash_rust::xxh3::xxh3_64(&v.to_le_bytes());
        ViewUpdate::Pageview(PageviewRow { project: names.intern("p"), ts, path: names.intern(path), visitor, dims })
    }

    fn query(interval: Interval, to: i64, filters: PageFilters) -> PageviewsQuery {
        PageviewsQuery { project_id: "p".into(), interval, from: 0, to, filters }
    }

    #[test]
    fn answers_sum_buckets_and_union_visitors() {
        let views = ViewStore::default();
        let mut feed = views.subscribe();
        let m = Interval::Minute;
        views.apply(
            10,
            &[
                (hit(&views, 0, "/a", "Firefox", 1), 2),
                (hit(&views, 0, "/a", "Chrome", 2), 1),
                (hit(&views, 120_000, "/b", "Firefox", 2), 2),
            ],
        );
        assert_eq!(views.applied_through(), 10);
        let q = query(m, 180_000, PageFilters::default());
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
        let only_b = views.pageviews(&query(m, 180_000, PageFilters { path: Some("/b".into()), ..Default::default() }));
        assert_eq!(only_b.total, PageviewsTotal { pageviews: 2, visitors: 1 });
        let firefox =
            views.pageviews(&query(m, 180_000, PageFilters { browser: Some("Firefox".into()), ..Default::default() }));
        assert_eq!(firefox.total, PageviewsTotal { pageviews: 4, visitors: 2 });
        assert_eq!(firefox.series[0], PageviewsPoint { t: 0, pageviews: 2, visitors: 1 });
        // Minute buckets keep no browser rollup: their cells answer.
        let browsers = views.breakdown(&query(m, 180_000, PageFilters::default()), PageDimension::Browser, 10);
        let browsers: Vec<_> = browsers.iter().map(|r| (r.value.as_str(), r.pageviews, r.visitors)).collect();
        assert_eq!(browsers, [("Firefox", Some(4), Some(2)), ("Chrome", Some(1), Some(1))]);
        let change = feed.try_recv().unwrap();
        assert_eq!(change.view(), "pageviews");
        let changes = serde_json::to_value(&*change).unwrap()["changes"].clone();
        assert_eq!(changes[0]["pageviews"], 3);
        assert_eq!(changes[0]["visitors"], 2);
        assert_eq!(changes.as_array().unwrap().len(), 2);
        // A retraction takes page views out; a visitor sketch never forgets.
        views.apply(11, &[(hit(&views, 0, "/a", "Firefox", 1), -2)]);
        let answer = views.pageviews(&q);
        assert_eq!(answer.series[0], PageviewsPoint { t: 0, pageviews: 1, visitors: 2 });
        assert_eq!(views.pageviews(&PageviewsQuery { project_id: "other".into(), ..q }).total.pageviews, 0);
    }

    #[test]
    fn rollups_answer_as_the_cells_do() {
        // Hour buckets against their cells, minute buckets against their
        // page views.
        for h in [Interval::Hour, Interval::Minute] {
            rollups_answer_as_the_cells_do_at(h);
        }
    }

    fn rollups_answer_as_the_cells_do_at(h: Interval) {
        let views = ViewStore::default();
        let mut updates = Vec::new();
        for v in 0..400u64 {
            let path = ["/a", "/b", "/c"][(v % 3) as usize];
            let browser = ["Firefox", "Chrome"][(v % 2) as usize];
            updates.push((hit(&views, (v % 4) as i64 * h.millis(), path, browser, v % 120), 1 + (v % 3) as isize));
        }
        views.apply(10, &updates);
        let to = 4 * h.millis();
        // The rollups (no filter; a path filter) against a scan of the
        // cells: a filter every cell passes.
        let scan = |path: Option<&str>| PageFilters {
            path: path.map(str::to_string),
            device: Some("desktop".into()),
            ..Default::default()
        };
        let rollup = views.pageviews(&query(h, to, PageFilters::default()));
        assert_eq!(rollup, views.pageviews(&query(h, to, scan(None))));
        assert_eq!(rollup.total.visitors, 120);
        let path = PageFilters { path: Some("/b".into()), ..Default::default() };
        assert_eq!(views.pageviews(&query(h, to, path)), views.pageviews(&query(h, to, scan(Some("/b")))));
        let pages = views.breakdown(&query(h, to, PageFilters::default()), PageDimension::Page, 10);
        assert_eq!(pages, views.breakdown(&query(h, to, scan(None)), PageDimension::Page, 10));
        assert_eq!(pages.iter().map(|r| r.pageviews.unwrap()).sum::<i64>(), rollup.total.pageviews);
        assert_eq!(pages[0].visitors, Some(40));
        // One filter reads that dimension's rollup; with a second one that
        // every cell passes, the cells are scanned.
        let firefox = PageFilters { browser: Some("Firefox".into()), ..Default::default() };
        let firefox_scan = PageFilters { device: Some("desktop".into()), ..firefox.clone() };
        assert_eq!(views.pageviews(&query(h, to, firefox.clone())), views.pageviews(&query(h, to, firefox_scan)));
        assert_eq!(views.pageviews(&query(h, to, firefox)).total.visitors, 60);
    }

    #[test]
    fn a_breakdown_leaves_out_only_values_that_cannot_make_the_cut() {
        let views = ViewStore::default();
        let h = Interval::Hour;
        // 60 pages with a steep spread over 24 hours, the visitors of each
        // hour new: ranking them needs the union over the hours.
        let mut updates = Vec::new();
        for page in 0..60u64 {
            let per_hour = 400 / (page + 1);
            for hour in 0..24 {
                for v in 0..per_hour {
                    let visitor = (page * 24 + hour) * 1_000 + v;
                    updates.push((hit(&views, hour as i64 * 3_600_000, &format!("/{page}"), "Firefox", visitor), 1));
                }
            }
        }
        // Pages that lead by page views with few visitors (reloaded all
        // day): the most page views are not the most visitors.
        for page in 0..30u64 {
            for hour in 0..24 {
                let ts = hour * 3_600_000;
                updates.push((hit(&views, ts, &format!("/reloaded/{page}"), "Firefox", page + 1_000_000), 1_000));
            }
        }
        views.apply(10, &updates);
        let all = views.breakdown(&query(h, 24 * 3_600_000, PageFilters::default()), PageDimension::Page, 1_000);
        assert_eq!(all.len(), 90);
        assert!(all[..60].iter().all(|row| !row.value.starts_with("/reloaded")));
        for limit in [1, 5, 20, 59, 60, 61] {
            let top = views.breakdown(&query(h, 24 * 3_600_000, PageFilters::default()), PageDimension::Page, limit);
            assert_eq!(top, all[..limit], "limit {limit}");
        }
        let browsers = views.breakdown(&query(h, 24 * 3_600_000, PageFilters::default()), PageDimension::Browser, 3);
        assert_eq!(browsers.len(), 1);
        assert_eq!(browsers[0].pageviews, Some(updates.iter().map(|(_, n)| *n as i64).sum::<i64>()));
    }

    #[test]
    fn page_blocks_answer_as_the_hours_do() {
        let views = ViewStore::new(30 * 86_400_000);
        let h = Interval::Hour;
        let mut updates = Vec::new();
        for v in 0..6_000u64 {
            let page = format!("/{}", v % 7 * (v % 5));
            updates.push((hit(&views, (v % 30) as i64 * 3_600_000, &page, "Firefox", v % 2_000), 1));
        }
        views.apply(10, &updates);
        // The range as hours: blocks where it holds all six hours of one.
        let ranged = |from: i64, to: i64, filters: PageFilters| {
            let q = PageviewsQuery { project_id: "p".into(), interval: h, from, to, filters };
            views.breakdown(&q, PageDimension::Page, 100)
        };
        // A filter every cell passes reads the hours' cells instead.
        let scan = || PageFilters { device: Some("desktop".into()), ..Default::default() };
        for (from, to) in [(0, 30), (1, 25), (5, 13), (6, 12), (2, 8), (0, 1), (0, i64::MAX / 3_600_000)] {
            let (from, to) = (from * 3_600_000, to * 3_600_000 - 1_800_000);
            let blocks = ranged(from, to, PageFilters::default());
            assert_eq!(blocks, ranged(from, to, scan()), "{from}..{to}");
            assert!(!blocks.is_empty());
        }
        let one = PageFilters { path: Some("/4".into()), ..Default::default() };
        assert_eq!(
            ranged(0, 30 * 3_600_000, one.clone()),
            ranged(0, 30 * 3_600_000, PageFilters { device: scan().device, ..one })
        );
        // A block leaves with its first hour; its other hours still answer.
        let late = 30 * 86_400_000 + 3_600_000;
        views.apply(late, &[]);
        let left = ranged(0, 12 * 3_600_000, PageFilters::default());
        assert_eq!(left, ranged(0, 12 * 3_600_000, scan()));
        // Hours 1 to 11, 200 page views each.
        assert_eq!(left.iter().map(|r| r.pageviews.unwrap()).sum::<i64>(), 2_200);
    }

    #[test]
    fn buckets_leave_whole_once_out_of_the_window() {
        let views = ViewStore::new(1_000);
        let hits = |views: &ViewStore| [(hit(views, 0, "/", "Firefox", 1), 1)];
        views.apply(60_000, &hits(&views));
        let total = |interval: Interval| views.pageviews(&query(interval, 86_400_000, Default::default())).total;
        assert_eq!(total(Interval::Minute).pageviews, 1);
        // The minute bucket ends at 60 s and is kept a second longer.
        views.apply(61_000, &[]);
        assert_eq!(total(Interval::Minute), PageviewsTotal { pageviews: 0, visitors: 0 });
        assert_eq!(total(Interval::Hour).pageviews, 1);
        // A late page view of a bucket already gone is not counted.
        views.apply(61_001, &hits(&views));
        assert_eq!(total(Interval::Minute).pageviews, 0);
        assert_eq!(total(Interval::Hour).pageviews, 2);
        views.apply(86_401_000, &[]);
        assert_eq!(total(Interval::Day).pageviews, 0);
    }
}
