//! Page views and unique visitors per project · interval · bucket · path.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::buckets::Interval;
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

/// One page view of one visitor in one bucket of every interval; its diff
/// is how many. The read model counts page views per cell and adds the
/// visitor to the cell's visitor sketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageviewUpdate {
    pub key: BucketKey,
    pub visitor: u64,
}

/// Each page view in its bucket of every interval.
///
/// Nothing is kept here: page views are sums and visitors are sketches that
/// only grow, so the read model folds them in and lets a whole bucket go
/// when it leaves the window. (Keeping `distinct (bucket, visitor)` here,
/// with a retraction per event waiting for its expiry, held about 600 bytes
/// per page view; bench/README.md.)
pub fn pageview_views<'s>(rows: VecCollection<'s, Time, PageviewRow>) -> VecCollection<'s, Time, PageviewUpdate> {
    rows.flat_map(|row| {
        Interval::ALL.map(|interval| {
            let bucket = interval.bucket_of(row.ts);
            let key = BucketKey { project: row.project, interval, bucket, path: row.path, dims: row.dims };
            PageviewUpdate { key, visitor: row.visitor }
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    type View = BTreeMap<PageviewUpdate, isize>;

    /// The obviously correct batch version of [`pageview_views`].
    fn reference(rows: &[(PageviewRow, isize)]) -> View {
        let mut view = View::new();
        for (row, diff) in rows {
            for interval in Interval::ALL {
                let bucket = interval.bucket_of(row.ts);
                let key = BucketKey { project: row.project, interval, bucket, path: row.path, dims: row.dims };
                *view.entry(PageviewUpdate { key, visitor: row.visitor }).or_default() += diff;
            }
        }
        view.retain(|_, diff| *diff != 0);
        view
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

    /// The harness's signature; page views keep no window of their own.
    fn ignoring_retention(
        rows: VecCollection<'_, Time, PageviewRow>,
        _: i64,
    ) -> VecCollection<'_, Time, PageviewUpdate> {
        pageview_views(rows)
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let first: Vec<(PageviewRow, isize)> = random_rows(&mut rng, 300).into_iter().map(|r| (r, 1)).collect();
            let second: Vec<(PageviewRow, isize)> = random_rows(&mut rng, 200).into_iter().map(|r| (r, 1)).collect();
            let retracted: Vec<(PageviewRow, isize)> =
                first.iter().filter(|_| rng.random_bool(0.33)).map(|(r, _)| (*r, -1)).collect();
            let all: Vec<(PageviewRow, isize)> = first.iter().chain(&second).chain(&retracted).copied().collect();
            let batches = vec![first, second, retracted];
            for workers in [1, 2, 3] {
                let got = crate::testing::run(workers, batches.clone(), 10, 0, ignoring_retention);
                assert_eq!(got, reference(&all), "seed {seed}, {workers} workers");
            }
        }
    }
}
