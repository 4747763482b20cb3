//! Core Web Vitals: each measurement is quantized (HDR) and rated here,
//! and goes to the read model as it is, which counts it in its bucket of
//! every interval per project · metric · path · device · browser ·
//! release: a histogram cell holds a few hundred distinct values, each with
//! its count, never every sample, and the read model merges cells for any
//! range at query time.

use std::sync::LazyLock;

use differential_dataflow::VecCollection;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use sightline_model::VitalName;

use crate::{Symbol, Time};

/// Largest value kept, in scaled units (an hour in µs); larger ones count
/// as this.
pub const MAX_SCALED: u64 = 3_600_000_000;
/// Significant decimal digits the quantization keeps: a bucket is at most
/// 1/128 of its value wide, so a percentile is within 0.4 % when read at a
/// bucket's middle.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// One vital measurement as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VitalRow {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub metric: VitalName,
    pub path: Symbol,
    pub device: Symbol,
    pub browser: Symbol,
    /// The app version; the empty name for none.
    pub release: Symbol,
    /// The value in scaled units ([`scale`]).
    pub value: u64,
}

/// Google's rating of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rating {
    Good,
    NeedsImprovement,
    Poor,
}

/// A measurement as the read model counts it: its row, with the value
/// quantized, and its rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VitalUpdate {
    /// `value` is the lowest value of its quantization bucket, scaled.
    pub row: VitalRow,
    /// The rating of the value before it was quantized.
    pub rating: Rating,
}

/// Measurements are kept as integers: microseconds for the timing metrics,
/// millionths for CLS (unitless, typically 0 to 1).
pub fn scale(metric: VitalName, value: f64) -> u64 {
    let factor = if metric == VitalName::Cls { 1_000_000.0 } else { 1_000.0 };
    let scaled = (value * factor).round();
    if scaled.is_nan() || scaled <= 0.0 { 0 } else { (scaled as u64).min(MAX_SCALED) }
}

/// The inverse of [`scale`].
pub fn unscale(metric: VitalName, scaled: f64) -> f64 {
    let factor = if metric == VitalName::Cls { 1_000_000.0 } else { 1_000.0 };
    scaled / factor
}

/// Google's thresholds (good up to the first, poor above the second), in
/// scaled units.
pub fn thresholds(metric: VitalName) -> (u64, u64) {
    let (good, poor) = match metric {
        VitalName::Lcp => (2500.0, 4000.0),
        VitalName::Inp => (200.0, 500.0),
        VitalName::Cls => (0.1, 0.25),
        VitalName::Fcp => (1800.0, 3000.0),
        VitalName::Ttfb => (800.0, 1800.0),
        VitalName::Fid => (100.0, 300.0),
    };
    (scale(metric, good), scale(metric, poor))
}

/// The rating of a scaled value; decided on the exact value, before
/// quantization, so the shares are exact.
pub fn rate(metric: VitalName, scaled: u64) -> Rating {
    let (good, poor) = thresholds(metric);
    if scaled <= good {
        Rating::Good
    } else if scaled <= poor {
        Rating::NeedsImprovement
    } else {
        Rating::Poor
    }
}

/// A histogram with the quantization the dataflow uses, for reading.
pub fn empty_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_SCALED, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

/// The quantization bucket a scaled value falls into, as its lowest value.
pub fn quantize(scaled: u64) -> u64 {
    static LAYOUT: LazyLock<Histogram<u64>> = LazyLock::new(empty_histogram);
    LAYOUT.lowest_equivalent(scaled.min(MAX_SCALED))
}

/// Each measurement rated and quantized. The read model counts them per
/// cell and drops each bucket whole once it has left the window: nothing is
/// kept here.
pub fn vital_views<'s>(rows: VecCollection<'s, Time, VitalRow>) -> VecCollection<'s, Time, VitalUpdate> {
    rows.map(|row| VitalUpdate {
        rating: rate(row.metric, row.value),
        row: VitalRow { value: quantize(row.value), ..row },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    type View = BTreeMap<VitalUpdate, isize>;

    /// The obviously correct batch version of [`vital_views`].
    fn reference(rows: &[(VitalRow, isize)]) -> View {
        let mut view = View::new();
        for (row, diff) in rows {
            let quantized = VitalRow { value: quantize(row.value), ..*row };
            let update = VitalUpdate { row: quantized, rating: rate(row.metric, row.value) };
            *view.entry(update).or_default() += diff;
        }
        view.retain(|_, d| *d != 0);
        view
    }

    fn random_row(rng: &mut StdRng) -> VitalRow {
        let metric = VitalName::ALL[rng.random_range(0..VitalName::ALL.len())];
        let raw = if metric == VitalName::Cls { rng.random_range(0.0..0.6) } else { rng.random_range(0.0..9000.0) };
        VitalRow {
            project: rng.random_range(0..2),
            ts: 1_700_000_000_000 + rng.random_range(0..3 * 3_600_000),
            metric,
            path: rng.random_range(0..3),
            device: rng.random_range(0..2),
            browser: rng.random_range(0..2),
            release: rng.random_range(0..2),
            value: scale(metric, raw),
        }
    }

    /// The harness's signature; the counts keep no window of their own.
    fn ignoring_retention(rows: VecCollection<'_, Time, VitalRow>, _: i64) -> VecCollection<'_, Time, VitalUpdate> {
        vital_views(rows)
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let first: Vec<VitalRow> = (0..400).map(|_| random_row(&mut rng)).collect();
            let second: Vec<VitalRow> = (0..200).map(|_| random_row(&mut rng)).collect();
            let retracted: Vec<VitalRow> = first.iter().filter(|_| rng.random_bool(0.3)).cloned().collect();
            let batches: Vec<Vec<(VitalRow, isize)>> = vec![
                first.iter().map(|r| (*r, 1)).collect(),
                second.iter().map(|r| (*r, 1)).collect(),
                retracted.iter().map(|r| (*r, -1)).collect(),
            ];
            let all: Vec<(VitalRow, isize)> = batches.concat();
            for workers in [1, 2] {
                let got = crate::testing::run(workers, batches.clone(), 10, 0, ignoring_retention);
                assert_eq!(got, reference(&all), "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn ratings_follow_googles_thresholds() {
        assert_eq!(rate(VitalName::Lcp, scale(VitalName::Lcp, 2500.0)), Rating::Good);
        assert_eq!(rate(VitalName::Lcp, scale(VitalName::Lcp, 2500.001)), Rating::NeedsImprovement);
        assert_eq!(rate(VitalName::Lcp, scale(VitalName::Lcp, 4000.0)), Rating::NeedsImprovement);
        assert_eq!(rate(VitalName::Lcp, scale(VitalName::Lcp, 4001.0)), Rating::Poor);
        assert_eq!(rate(VitalName::Cls, scale(VitalName::Cls, 0.1)), Rating::Good);
        assert_eq!(rate(VitalName::Cls, scale(VitalName::Cls, 0.11)), Rating::NeedsImprovement);
        assert_eq!(rate(VitalName::Cls, scale(VitalName::Cls, 0.26)), Rating::Poor);
        assert_eq!(rate(VitalName::Inp, scale(VitalName::Inp, 501.0)), Rating::Poor);
        assert_eq!(rate(VitalName::Ttfb, scale(VitalName::Ttfb, 800.0)), Rating::Good);
        assert_eq!(rate(VitalName::Fid, scale(VitalName::Fid, 100.5)), Rating::NeedsImprovement);
        assert_eq!(rate(VitalName::Fcp, scale(VitalName::Fcp, 3000.5)), Rating::Poor);
    }

    #[test]
    fn quantization_keeps_few_distinct_values_and_is_stable() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..100_000 {
            let v = scale(VitalName::Lcp, rng.random_range(100.0..10_000.0));
            let q = quantize(v);
            assert!(q <= v && (v - q) as f64 <= v as f64 / 128.0, "{v} → {q}");
            assert_eq!(quantize(q), q);
            distinct.insert(q);
        }
        // Two decades of values in well under a thousand buckets.
        assert!(distinct.len() < 1_000, "{} buckets", distinct.len());
    }
}
