//! Page views and unique visitors per project · interval · bucket · path.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::buckets::Interval;
use crate::retention::expire_at;
use crate::{Symbol, Time};

/// One page view as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageviewRow {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub path: Symbol,
    /// A hash of the visitor's anonymous id.
    pub visitor: u64,
    pub dims: PageDims,
}

/// What page views can be filtered and broken down by, besides the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageDims {
    pub device: Symbol,
    pub browser: Symbol,
    pub os: Symbol,
    /// The referring site's domain; the empty name for none (or the site
    /// itself).
    pub referrer: Symbol,
    /// The app version; the empty name for none.
    pub release: Symbol,
}

/// Where a count lives: one bucket of one path of one project.
/// Field order is sort order: the most discriminating field first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BucketKey {
    pub bucket: i64,
    pub interval: Interval,
    pub path: Symbol,
    pub project: Symbol,
    pub dims: PageDims,
}

/// A change to the page view views. Its diff says how much: a page view
/// count changes by the diff; a visitor joins (+1) or leaves (-1) the set
/// of distinct visitors of the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PageviewUpdate {
    Pageviews(BucketKey),
    Visitor(BucketKey, u64),
}

/// Page view counts and distinct visitors per bucket of every interval,
/// each bucket forgotten `retention_ms` after it ends.
pub fn pageview_views<'s>(
    rows: VecCollection<'s, Time, PageviewRow>,
    retention_ms: i64,
) -> VecCollection<'s, Time, PageviewUpdate> {
    let bucketed = rows.flat_map(|row| {
        Interval::ALL.map(|interval| {
            let bucket = interval.bucket_of(row.ts);
            let key = BucketKey { project: row.project, interval, bucket, path: row.path, dims: row.dims };
            (key, row.visitor)
        })
    });
    let retained = expire_at(bucketed, move |(key, _)| {
        key.bucket.saturating_add(key.interval.millis()).saturating_add(retention_ms)
    });
    let pageviews = retained.clone().map(|(key, _)| PageviewUpdate::Pageviews(key));
    let visitors = retained.distinct().map(|(key, visitor)| PageviewUpdate::Visitor(key, visitor));
    pageviews.concat(visitors)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    type View = BTreeMap<PageviewUpdate, isize>;

    /// The obviously correct batch version of [`pageview_views`].
    fn reference(rows: &[PageviewRow]) -> View {
        let mut counts: BTreeMap<BucketKey, isize> = BTreeMap::new();
        let mut visitors: BTreeSet<(BucketKey, u64)> = BTreeSet::new();
        for row in rows {
            for interval in Interval::ALL {
                let bucket = interval.bucket_of(row.ts);
                let key = BucketKey { project: row.project, interval, bucket, path: row.path, dims: row.dims };
                *counts.entry(key).or_default() += 1;
                visitors.insert((key, row.visitor));
            }
        }
        let mut view: View = counts.into_iter().map(|(k, c)| (PageviewUpdate::Pageviews(k), c)).collect();
        view.extend(visitors.into_iter().map(|(k, v)| (PageviewUpdate::Visitor(k, v), 1)));
        view
    }

    fn run(workers: usize, batches: Vec<Vec<(PageviewRow, isize)>>, retention_ms: i64, until: Time) -> View {
        crate::testing::run(workers, batches, until, retention_ms, pageview_views)
    }

    fn random_rows(rng: &mut StdRng, n: usize) -> Vec<PageviewRow> {
        (0..n)
            .map(|_| PageviewRow {
                project: rng.random_range(0..2),
                ts: 1_700_000_000_000 + rng.random_range(0..3 * 3_600_000),
                path: rng.random_range(0..4),
                visitor: rng.random_range(0..20),
                dims: PageDims {
                    device: rng.random_range(0..2),
                    referrer: rng.random_range(0..2),
                    ..PageDims::default()
                },
            })
            .collect()
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let first = random_rows(&mut rng, 300);
            let second = random_rows(&mut rng, 200);
            // Retract a random third of the first batch in the last batch.
            let retracted: Vec<PageviewRow> = first.iter().filter(|_| rng.random_bool(0.33)).cloned().collect();
            let mut kept = first.clone();
            for r in &retracted {
                let pos = kept.iter().position(|k| k == r).unwrap();
                kept.remove(pos);
            }
            kept.extend(second.iter().cloned());
            let batches = vec![
                first.into_iter().map(|r| (r, 1)).collect(),
                second.into_iter().map(|r| (r, 1)).collect(),
                retracted.into_iter().map(|r| (r, -1)).collect(),
            ];
            for workers in [1, 2, 3] {
                let got = run(workers, batches.clone(), i64::MAX / 4, 10);
                assert_eq!(got, reference(&kept), "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn buckets_are_forgotten_after_retention() {
        let row = PageviewRow { project: 0, ts: 0, path: 0, visitor: 1, dims: PageDims::default() };
        let retention = 1_000;
        // Before the minute bucket expires (at 60s + 1s) everything is there.
        let early = run(1, vec![vec![(row, 1)]], retention, 60_000);
        assert_eq!(early, reference(std::slice::from_ref(&row)));
        // After the minute bucket expired, only hour and day buckets remain.
        let later = run(1, vec![vec![(row, 1)]], retention, 61_001);
        assert!(later.keys().all(|u| match u {
            PageviewUpdate::Pageviews(k) | PageviewUpdate::Visitor(k, _) => k.interval != Interval::Minute,
        }));
        assert_eq!(later.len(), 4);
        // After the day bucket expired, nothing is left.
        assert!(run(1, vec![vec![(row, 1)]], retention, 86_401_001).is_empty());
    }
}
