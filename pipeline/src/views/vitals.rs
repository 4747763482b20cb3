//! The web vitals read model: per histogram cell (project, metric,
//! interval, bucket, path, device, browser, release), a count per (rating,
//! quantized value).
//! A range is answered by merging its cells into one `hdrhistogram`.

use std::collections::BTreeMap;

use serde::Serialize;
use sightline_model::VitalName;
use sightline_operators::vitals::{empty_histogram, unscale};
use sightline_operators::{Interval, Rating, Signal, SignalRow, Symbol, Time, VitalCell, VitalUpdate};

use super::{CellMap, Names, Oldest, expired, interval_for};

/// One cell's measurements: how many in all, and how many per (rating,
/// quantized value), in that order. Most cells hold a few values: a sorted
/// list is a tenth of a B-tree's memory, and the total spares a question
/// that ranks pages a walk over every cell's values.
#[derive(Debug, Default)]
struct Counts {
    total: i64,
    values: Vec<((Rating, u64), i64)>,
}

impl Counts {
    /// Adds `diff` measurements of one value; whether the cell is now empty.
    fn add(&mut self, value: (Rating, u64), diff: i64) -> bool {
        self.total += diff;
        match self.values.binary_search_by_key(&value, |(v, _)| *v) {
            Ok(at) => {
                self.values[at].1 += diff;
                if self.values[at].1 == 0 {
                    self.values.remove(at);
                }
            }
            Err(at) => self.values.insert(at, (value, diff)),
        }
        self.values.is_empty()
    }
}

/// Every project's vitals histograms.
#[derive(Debug, Default)]
pub(super) struct VitalViews {
    cells: BTreeMap<VitalCell, Counts>,
    /// The oldest bucket start held per interval: expiry scans the cells
    /// only once one of them has left the window.
    oldest: Oldest,
}

impl VitalViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.cells.retain(|cell, _| cell.project != project);
    }

    /// Drops the cells whose bucket left the window by the tick `through`.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        if self.oldest.any_expired(through, retention_ms) {
            self.cells.retain(|cell, _| !expired(cell.interval, cell.bucket, through, retention_ms));
            self.oldest = Oldest::of(self.cells.keys().map(|cell| (cell.interval, cell.bucket)));
        }
    }

    /// A project's vital measurements of the minutes since `since` as alert
    /// signals, each at its minute's start (a scan of every cell: this runs
    /// when a project gets its first rule).
    pub(super) fn signals_since(&self, project: Symbol, since: i64) -> Vec<(SignalRow, isize)> {
        let minutes = self
            .cells
            .iter()
            .filter(|(cell, _)| cell.project == project && cell.interval == Interval::Minute && cell.bucket >= since);
        minutes
            .flat_map(|(cell, counts)| {
                counts.values.iter().map(move |&((_, value), count)| {
                    let signal = SignalRow {
                        project,
                        received_s: cell.bucket.div_euclid(1000),
                        signal: Signal::Vital { metric: cell.metric, value },
                        path: cell.path,
                        release: cell.release,
                        device: cell.device,
                    };
                    (signal, count as isize)
                })
            })
            .collect()
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
    /// Adds `diff` measurements to a cell, unless its bucket has already
    /// left the window.
    pub(super) fn apply(&mut self, update: &VitalUpdate, diff: i64, (through, retention_ms): (Time, i64)) {
        if expired(update.cell.interval, update.cell.bucket, through, retention_ms) {
            return;
        }
        self.oldest.note(update.cell.interval, update.cell.bucket);
        if self.cells.entry(update.cell).or_default().add((update.rating, update.value), diff) {
            self.cells.remove(&update.cell);
        }
    }

    pub(super) fn answer(&self, names: &Names, q: &VitalsQuery) -> VitalsAnswer {
        let mut summary = Summary::new();
        self.scan(names, q, |_, counts| summary.add(counts));
        summary.finish(q.metric)
    }

    /// The vitals of each page with measurements in the range, the pages
    /// with the most measurements first (`q.path` is ignored).
    pub(super) fn by_page(&self, names: &Names, q: &VitalsQuery, limit: usize) -> VitalsByPage {
        let q = VitalsQuery { path: None, ..q.clone() };
        // Measurements per page pick the pages; only theirs are merged into
        // histograms (one per page of the site took most of the time).
        let mut counts: CellMap<Symbol, i64> = CellMap::default();
        self.scan(names, &q, |cell, values| *counts.entry(cell.path).or_default() += values.total);
        let mut top: Vec<(Symbol, i64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        top.sort_by_key(|(path, count)| (std::cmp::Reverse(*count), *path));
        top.truncate(limit);
        let mut summaries: CellMap<Symbol, Summary> = top.iter().map(|(path, _)| (*path, Summary::new())).collect();
        self.scan(names, &q, |cell, values| {
            if let Some(summary) = summaries.get_mut(&cell.path) {
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

    /// Calls `visit` with every cell of the range that passes the filters.
    fn scan(&self, names: &Names, q: &VitalsQuery, mut visit: impl FnMut(&VitalCell, &Counts)) {
        let Some(project) = names.lookup(&q.project_id) else {
            return;
        };
        // A filter value never seen matches nothing.
        let resolve = |v: &Option<String>| v.as_deref().map(|v| names.lookup(v).unwrap_or(Symbol::MAX));
        let wanted = [resolve(&q.path), resolve(&q.device), resolve(&q.browser), resolve(&q.release)];
        let interval = interval_for(q.from, q.to);
        let at = |bucket| VitalCell {
            project,
            metric: q.metric,
            interval,
            bucket,
            path: 0,
            device: 0,
            browser: 0,
            release: 0,
        };
        for (cell, counts) in self.cells.range(at(interval.bucket_of(q.from))..at(q.to)) {
            let have = [cell.path, cell.device, cell.browser, cell.release];
            if !wanted.iter().zip(have).any(|(want, have)| want.is_some_and(|w| w != have)) {
                visit(cell, counts);
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
        for &((rating, value), count) in &counts.values {
            let count = u64::try_from(count).unwrap_or(0);
            self.histogram.record_n(value, count).expect("quantized values are within the histogram's bounds");
            self.by_rating[rating as usize] += count as i64;
        }
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
    use sightline_operators::vitals::{quantize, rate, scale};

    use super::super::{ViewStore, ViewUpdate};
    use super::*;

    #[test]
    fn a_cell_keeps_its_total_and_sorted_values_through_retractions() {
        let mut counts = Counts::default();
        assert!(!counts.add((Rating::Poor, 900), 2));
        assert!(!counts.add((Rating::Good, 100), 1));
        assert!(!counts.add((Rating::Good, 300), 1));
        assert_eq!(counts.values, vec![((Rating::Good, 100), 1), ((Rating::Good, 300), 1), ((Rating::Poor, 900), 2)]);
        assert!(!counts.add((Rating::Good, 300), -1));
        assert!(!counts.add((Rating::Poor, 900), -1));
        assert_eq!((counts.total, counts.values.len()), (2, 2));
        assert!(!counts.add((Rating::Good, 100), -1));
        assert!(counts.add((Rating::Poor, 900), -1), "the last value gone empties the cell");
        assert_eq!(counts.total, 0);
    }

    #[test]
    fn per_page_answers_match_the_whole_and_the_filters() {
        let views = ViewStore::default();
        let names = views.names();
        let mut updates = Vec::new();
        for i in 0..400u64 {
            let cell = VitalCell {
                project: names.intern("p"),
                metric: VitalName::Lcp,
                interval: Interval::Hour,
                bucket: (i % 3) as i64 * 3_600_000,
                path: names.intern(["/", "/a", "/b"][(i % 3) as usize]),
                device: names.intern("desktop"),
                browser: names.intern(["Chrome", "Firefox"][(i % 2) as usize]),
                release: names.intern(["1.0", "1.1", "1.2"][(i % 3) as usize]),
            };
            let value = scale(VitalName::Lcp, 500.0 + i as f64 * 20.0);
            let update = VitalUpdate { cell, rating: rate(VitalName::Lcp, value), value: quantize(value) };
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
        // A filter every cell passes changes nothing.
        let scanned = VitalsQuery { device: Some("desktop".into()), ..q.clone() };
        assert_eq!(views.vitals(&q), views.vitals(&scanned));
        assert_eq!(views.vitals(&q).count, 400);
        assert_eq!(views.vitals_by_page(&q, 2), views.vitals_by_page(&scanned, 2));
        let pages = views.vitals_by_page(&q, 2).pages;
        assert_eq!((pages.len(), pages[0].count), (2, 134));
        let firefox = VitalsQuery { browser: Some("Firefox".into()), ..q };
        assert_eq!(views.vitals(&firefox).count, 200);
    }
}
