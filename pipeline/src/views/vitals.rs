//! The web vitals read model: per project, interval, bucket and metric, a
//! histogram cell per (path; device, browser and release as an id from a
//! [`DimsTable`]), each a count per (rating, quantized value). A range is
//! answered by merging its cells into one `hdrhistogram`.
//!
//! A bucket is dropped whole once it has been out of the retention window,
//! and what still arrives for it is not counted.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_model::VitalName;
use sightline_operators::vitals::{empty_histogram, unscale};
use sightline_operators::{Interval, Rating, Signal, SignalRow, Symbol, Time, VitalUpdate};
use thin_vec::{ThinVec, thin_vec};

use super::cells::{Cell, Cells};
use super::pageviews::{DimsId, DimsTable};
use super::{CellMap, KEPT, Names, Sealing, add_i32, drop_expired, in_window_buckets, interval_for, interval_index};

/// A measurement's device, browser and release.
type VitalDevice = (Symbol, Symbol, Symbol);

/// A quantized value (scaled; [`sightline_operators::vitals::MAX_SCALED`]
/// fits in 32 bits) with its rating.
type Slot = (Rating, u32);

/// One cell's measurements: a count per (rating, quantized value). Most
/// cells hold one value (about one cell per measurement at minute
/// resolution): it is held inline with its count, and a cell takes 16
/// bytes (24 with its total apart, 32 with a `Vec` of (rating, u64, i64)
/// plus an allocation of 96). The total is inline either way: questions per
/// page rank pages by it, and summing a list took them from 0.7 to 2 ms.
#[derive(Debug, PartialEq)]
enum Counts {
    /// `total` measurements, every one of this value (none yet at 0: the
    /// first one's value replaces this one).
    One { total: i32, slot: Slot },
    /// A count per value, sorted, of at least two values, and their sum.
    Many { total: i32, values: ThinVec<(Slot, i32)> },
}

impl Default for Counts {
    fn default() -> Counts {
        Counts::One { total: 0, slot: (Rating::Good, 0) }
    }
}

impl Cell for Counts {
    fn is_empty(&self) -> bool {
        self.total() == 0
    }

    fn seal(&mut self) {
        if let Counts::Many { values, .. } = self {
            values.shrink_to_fit();
        }
    }
}

impl Counts {
    /// How many measurements in all.
    fn total(&self) -> i32 {
        match self {
            Counts::One { total, .. } | Counts::Many { total, .. } => *total,
        }
    }

    /// Adds `diff` measurements of one value; whether the cell is now empty.
    fn add(&mut self, slot: Slot, diff: i64) -> bool {
        match self {
            Counts::One { total, slot: one } if *one == slot || *total == 0 => {
                (*one, *total) = (slot, add_i32(*total, diff));
            }
            Counts::One { total, slot: one } => {
                let (kept, added) = ((*one, *total), (slot, add_i32(0, diff)));
                let values = if kept.0 < slot { thin_vec![kept, added] } else { thin_vec![added, kept] };
                *self = Counts::Many { total: add_i32(*total, diff), values };
            }
            Counts::Many { total, values } => {
                *total = add_i32(*total, diff);
                match values.binary_search_by_key(&slot, |(v, _)| *v) {
                    Ok(at) => {
                        values[at].1 = add_i32(values[at].1, diff);
                        if values[at].1 == 0 {
                            values.remove(at);
                        }
                    }
                    Err(at) => values.insert(at, (slot, add_i32(0, diff))),
                }
                if let [(only, count)] = values[..] {
                    *self = Counts::One { total: count, slot: only };
                }
            }
        }
        self.is_empty()
    }

    /// Calls `visit` with each value and its count.
    fn each(&self, mut visit: impl FnMut(Slot, i64)) {
        match self {
            Counts::One { total, slot } => visit(*slot, i64::from(*total)),
            Counts::Many { values, .. } => values.iter().for_each(|(slot, n)| visit(*slot, i64::from(*n))),
        }
    }
}

/// A bucket's measurements of one metric.
#[derive(Debug, Default)]
struct MetricCells {
    /// By (path, device id).
    cells: Cells<(Symbol, DimsId), Counts>,
    /// Hour buckets only: minute buckets, 60 times as many, are scanned
    /// cell by cell, and an empty rollup in each took 64 bytes.
    rollup: Option<Box<Rollup>>,
}

/// An hour's measurements of one metric in all, and per path, which
/// questions without a device, browser or release filter read instead of
/// the cells (a day's LCP merged about 50k cells of the busiest site at 10M
/// events).
#[derive(Debug, Default)]
struct Rollup {
    all: Counts,
    by_path: Cells<Symbol, Counts>,
}

impl MetricCells {
    fn seal(&mut self) {
        self.cells.seal();
        if let Some(rollup) = &mut self.rollup {
            rollup.by_path.seal();
            rollup.all.seal();
        }
    }
}

/// What a scan keeps apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// Nothing: one set of counts per bucket will do.
    Whole,
    /// Pages.
    Path,
}

/// One project's vitals, per interval, per bucket start, per metric.
#[derive(Debug, Default)]
struct ProjectVitals {
    by_interval: [BTreeMap<i64, Vec<(VitalName, MetricCells)>>; KEPT],
    sealing: Sealing,
}

/// Every project's vitals histograms.
#[derive(Debug, Default)]
pub(super) struct VitalViews {
    projects: HashMap<Symbol, ProjectVitals>,
    devices: DimsTable<VitalDevice>,
}

impl VitalViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }

    /// Drops the buckets that left the window by the tick `through`, and
    /// seals those that ended.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        for project in self.projects.values_mut() {
            project.sealing.seal_ended(&mut project.by_interval, |_, metrics| {
                metrics.shrink_to_fit();
                metrics.iter_mut().for_each(|(_, m)| m.seal());
            });
            drop_expired(&mut project.by_interval, through, retention_ms);
        }
        self.projects.retain(|_, p| p.by_interval.iter().any(|b| !b.is_empty()));
    }

    /// A project's vital measurements of the minutes since `since` as alert
    /// signals, each at its minute's start.
    pub(super) fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let Some(p) = self.projects.get(&project) else {
            return Vec::new();
        };
        let mut signals = Vec::new();
        for (&bucket, metrics) in p.by_interval[interval_index(Interval::Minute)].range(since..) {
            for (metric, counts) in metrics {
                for (&(path, device), counts) in counts.cells.iter() {
                    let (device, _, release) = self.devices.get(device);
                    counts.each(|(_, value), count| {
                        let signal = SignalRow {
                            project,
                            received_s: bucket.div_euclid(1000),
                            signal: Signal::Vital { metric: *metric, value: u64::from(value) },
                            path,
                            release,
                            device,
                        };
                        signals.push((signal, count as isize));
                    });
                }
            }
        }
        signals
    }
}

/// A vitals question.
#[derive(Debug, Clone)]
pub struct VitalsQuery {
    pub project_id: String,
    pub metric: VitalName,
    pub from: i64,
    pub to: i64,
    pub path: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub release: Option<String>,
}

/// The contract's answer to `vitals`: percentiles in the metric's unit
/// (ms; CLS unitless), `null` without measurements; shares are fractions.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VitalsAnswer {
    pub name: String,
    pub count: i64,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub good: f64,
    pub needs_improvement: f64,
    pub poor: f64,
}

/// The answer to `vitals/pages`: one metric's numbers per page.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VitalsByPage {
    pub name: String,
    pub pages: Vec<PageVitals>,
}

/// One page's numbers, as in [`VitalsAnswer`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PageVitals {
    pub path: String,
    pub count: i64,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub good: f64,
    pub needs_improvement: f64,
    pub poor: f64,
}

impl PageVitals {
    fn new(path: String, a: VitalsAnswer) -> PageVitals {
        PageVitals {
            path,
            count: a.count,
            p50: a.p50,
            p75: a.p75,
            p95: a.p95,
            p99: a.p99,
            good: a.good,
            needs_improvement: a.needs_improvement,
            poor: a.poor,
        }
    }
}

impl VitalViews {
    /// Counts `diff` measurements in their bucket of every interval still in
    /// the window.
    pub(super) fn apply(&mut self, update: &VitalUpdate, diff: i64, (through, retention_ms): (Time, i64)) {
        let row = &update.row;
        let device = self.devices.id((row.device, row.browser, row.release));
        // Quantized values are at most `MAX_SCALED`, below 2^32.
        let slot = (update.rating, u32::try_from(row.value).unwrap_or(u32::MAX));
        let project = self.projects.entry(row.project).or_default();
        project.sealing.note(row.ts, through);
        in_window_buckets(&mut project.by_interval, row.ts, (through, retention_ms), |interval, start, buckets| {
            let metrics = buckets.entry(start).or_default();
            let at = match metrics.iter().position(|(m, _)| *m == row.metric) {
                Some(at) => at,
                None => {
                    metrics.push((row.metric, MetricCells::default()));
                    metrics.len() - 1
                }
            };
            let counts = &mut metrics[at].1;
            counts.cells.update((row.path, device), |c| c.add(slot, diff));
            if interval != Interval::Minute {
                let rollup = counts.rollup.get_or_insert_default();
                rollup.by_path.update(row.path, |c| c.add(slot, diff));
                rollup.all.add(slot, diff);
            }
            if diff < 0 && counts.cells.is_empty() {
                metrics.swap_remove(at);
                if metrics.is_empty() {
                    buckets.remove(&start);
                }
            }
        });
    }

    pub(super) fn answer(&self, names: &Names, q: &VitalsQuery) -> VitalsAnswer {
        let mut summary = Summary::new();
        self.scan(names, q, Grain::Whole, |_, counts| summary.add(counts));
        summary.finish(q.metric)
    }

    /// The vitals of each page with measurements in the range, the pages
    /// with the most measurements first (`q.path` is ignored).
    pub(super) fn by_page(&self, names: &Names, q: &VitalsQuery, limit: usize) -> VitalsByPage {
        let q = VitalsQuery { path: None, ..q.clone() };
        // Measurements per page pick the pages; only theirs are merged into
        // histograms (one per page of the site took most of the time).
        let mut counts: CellMap<Symbol, i64> = CellMap::default();
        self.scan(names, &q, Grain::Path, |path, values| *counts.entry(path).or_default() += i64::from(values.total()));
        let mut top: Vec<(Symbol, i64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        top.sort_by_key(|(path, count)| (std::cmp::Reverse(*count), *path));
        top.truncate(limit);
        let mut summaries: CellMap<Symbol, Summary> = top.iter().map(|(path, _)| (*path, Summary::new())).collect();
        self.scan(names, &q, Grain::Path, |path, values| {
            if let Some(summary) = summaries.get_mut(&path) {
                summary.add(values);
            }
        });
        let pages = top
            .iter()
            .map(|(path, _)| {
                let summary = summaries.remove(path).expect("a summary per page");
                PageVitals::new(names.name(*path).to_string(), summary.finish(q.metric))
            })
            .collect();
        VitalsByPage { name: q.metric.as_str().to_owned(), pages }
    }

    /// Calls `visit` with the counts of the range that pass the filters,
    /// with their path (`Symbol::MAX` for a whole bucket's, at
    /// [`Grain::Whole`]): a bucket's rollups where they answer, else its
    /// cells.
    fn scan(&self, names: &Names, q: &VitalsQuery, grain: Grain, mut visit: impl FnMut(Symbol, &Counts)) {
        let Some(project) = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p)) else {
            return;
        };
        // A filter value never seen matches nothing.
        let resolve = |v: &Option<String>| v.as_deref().map(|v| names.lookup(v).unwrap_or(Symbol::MAX));
        let (path, device, browser, release) =
            (resolve(&q.path), resolve(&q.device), resolve(&q.browser), resolve(&q.release));
        let ok = |want: Option<Symbol>, have: Symbol| want.is_none_or(|w| w == have);
        let interval = interval_for(q.from, q.to);
        let buckets = project.by_interval[interval_index(interval.kept())].range(interval.bucket_of(q.from)..q.to);
        let rolled_up = interval != Interval::Minute && device.is_none() && browser.is_none() && release.is_none();
        for (_, metrics) in buckets {
            let Some((_, m)) = metrics.iter().find(|(m, _)| *m == q.metric) else {
                continue;
            };
            if rolled_up {
                let Some(rollup) = &m.rollup else {
                    continue;
                };
                match (path, grain) {
                    (None, Grain::Whole) => {
                        if !rollup.all.is_empty() {
                            visit(Symbol::MAX, &rollup.all);
                        }
                    }
                    (None, Grain::Path) => rollup.by_path.iter().for_each(|(path, counts)| visit(*path, counts)),
                    (Some(path), _) => rollup.by_path.get(&path).into_iter().for_each(|counts| visit(path, counts)),
                }
                continue;
            }
            for (&(cell_path, id), counts) in m.cells.iter() {
                let (d, b, r) = self.devices.get(id);
                if ok(path, cell_path) && ok(device, d) && ok(browser, b) && ok(release, r) {
                    visit(cell_path, counts);
                }
            }
        }
    }
}

/// Measurements merged into one histogram, with their ratings.
struct Summary {
    histogram: hdrhistogram::Histogram<u64>,
    by_rating: [i64; 3],
}

impl Summary {
    fn new() -> Summary {
        Summary { histogram: empty_histogram(), by_rating: [0; 3] }
    }

    fn add(&mut self, counts: &Counts) {
        counts.each(|(rating, value), count| {
            let count = u64::try_from(count).unwrap_or(0);
            let value = u64::from(value);
            self.histogram.record_n(value, count).expect("quantized values are within the histogram's bounds");
            self.by_rating[rating as usize] += count as i64;
        });
    }

    fn count(&self) -> i64 {
        self.by_rating.iter().sum()
    }

    fn finish(&self, metric: VitalName) -> VitalsAnswer {
        let count = self.count();
        let percentile = |quantile: f64| {
            // The middle of the bucket the quantile falls into: within half a
            // bucket (0.4 %) of the exact sample.
            let value = self.histogram.median_equivalent(self.histogram.value_at_quantile(quantile));
            (count > 0).then(|| unscale(metric, value as f64))
        };
        let share = |n: i64| if count > 0 { n as f64 / count as f64 } else { 0.0 };
        VitalsAnswer {
            name: metric.as_str().to_owned(),
            count,
            p50: percentile(0.50),
            p75: percentile(0.75),
            p95: percentile(0.95),
            p99: percentile(0.99),
            good: share(self.by_rating[Rating::Good as usize]),
            needs_improvement: share(self.by_rating[Rating::NeedsImprovement as usize]),
            poor: share(self.by_rating[Rating::Poor as usize]),
        }
    }
}

#[cfg(test)]
mod tests {
    use sightline_operators::VitalRow;
    use sightline_operators::vitals::{quantize, rate, scale};

    use super::super::{ViewStore, ViewUpdate};
    use super::*;

    #[test]
    fn a_cell_keeps_its_total_and_sorted_values_through_retractions() {
        assert_eq!(std::mem::size_of::<Counts>(), 16);
        let mut counts = Counts::default();
        assert!(!counts.add((Rating::Poor, 900), 2));
        assert_eq!(counts, Counts::One { total: 2, slot: (Rating::Poor, 900) }, "one value is held inline");
        assert!(!counts.add((Rating::Good, 100), 1));
        assert!(!counts.add((Rating::Good, 300), 1));
        let sorted = thin_vec![((Rating::Good, 100), 1), ((Rating::Good, 300), 1), ((Rating::Poor, 900), 2)];
        assert_eq!(counts, Counts::Many { total: 4, values: sorted });
        assert_eq!(counts.total(), 4);
        assert!(!counts.add((Rating::Good, 300), -1));
        assert!(!counts.add((Rating::Poor, 900), -1));
        assert_eq!(counts.total(), 2);
        assert!(!counts.add((Rating::Good, 100), -1));
        assert_eq!(counts, Counts::One { total: 1, slot: (Rating::Poor, 900) }, "back inline");
        assert!(counts.add((Rating::Poor, 900), -1), "the last value gone empties the cell");
        assert_eq!(counts.total(), 0);
        // An emptied cell takes the next measurement's value.
        assert!(!counts.add((Rating::Good, 50), 1));
        assert_eq!(counts, Counts::One { total: 1, slot: (Rating::Good, 50) });
    }

    #[test]
    fn per_page_answers_match_the_whole_and_the_filters() {
        let views = ViewStore::default();
        let names = views.names();
        let mut updates = Vec::new();
        for i in 0..400u64 {
            let value = scale(VitalName::Lcp, 500.0 + i as f64 * 20.0);
            let row = VitalRow {
                project: names.intern("p"),
                ts: (i % 3) as i64 * 3_600_000 + 60_000,
                metric: VitalName::Lcp,
                path: names.intern(["/", "/a", "/b"][(i % 3) as usize]),
                device: names.intern("desktop"),
                browser: names.intern(["Chrome", "Firefox"][(i % 2) as usize]),
                release: names.intern(["1.0", "1.1", "1.2"][(i % 3) as usize]),
                value: quantize(value),
            };
            let update = VitalUpdate { row, rating: rate(VitalName::Lcp, value) };
            updates.push((ViewUpdate::Vital(update), 1));
        }
        views.apply(10, &updates);
        let q = VitalsQuery {
            project_id: "p".into(),
            metric: VitalName::Lcp,
            from: 0,
            to: 7 * 3_600_000,
            path: None,
            device: None,
            browser: None,
            release: None,
        };
        // A filter every cell passes changes nothing: the hour buckets'
        // rollups (whole and per path) answer as their cells do.
        let scanned = VitalsQuery { device: Some("desktop".into()), ..q.clone() };
        assert_eq!(views.vitals(&q), views.vitals(&scanned));
        let page_a = VitalsQuery { path: Some("/a".into()), ..q.clone() };
        let page_a_scanned = VitalsQuery { device: Some("desktop".into()), ..page_a.clone() };
        assert_eq!(views.vitals(&page_a), views.vitals(&page_a_scanned));
        assert_eq!(views.vitals(&page_a).count, 133);
        assert_eq!(views.vitals(&q).count, 400);
        assert_eq!(views.vitals_by_page(&q, 2), views.vitals_by_page(&scanned, 2));
        let pages = views.vitals_by_page(&q, 2).pages;
        assert_eq!((pages.len(), pages[0].count), (2, 134));
        let firefox = VitalsQuery { browser: Some("Firefox".into()), ..q };
        assert_eq!(views.vitals(&firefox).count, 200);
    }
}
