//! Custom events: counts per project · bucket · name and every dimension a
//! query may filter or break down by (path, device, browser, release, the
//! set of properties). Any combination of filters is answered by the read
//! model from these cells; no filter needs a dataflow of its own.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::buckets::Interval;
use crate::{Symbol, Time};

/// One custom event as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventRow {
    pub project: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub name: Symbol,
    pub dims: EventDims,
}

/// What a custom event can be filtered and broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventDims {
    pub path: Symbol,
    pub device: Symbol,
    pub browser: Symbol,
    pub release: Symbol,
    /// The event's whole property set, interned (the read model knows its
    /// key/value pairs).
    pub props: Symbol,
}

/// Where a count lives. Field order is sort order: a range of buckets of
/// one event name of one project is one contiguous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventCell {
    pub project: Symbol,
    pub interval: Interval,
    pub name: Symbol,
    pub bucket: i64,
    pub dims: EventDims,
}

/// Custom event counts (the diff) per cell of every interval. The read
/// model sums them and drops each bucket whole once it has left the window
/// (as it does page views): nothing is kept here.
pub fn event_views<'s>(rows: VecCollection<'s, Time, EventRow>) -> VecCollection<'s, Time, EventCell> {
    rows.flat_map(|row| {
        Interval::ALL.map(|interval| EventCell {
            project: row.project,
            interval,
            bucket: interval.bucket_of(row.ts),
            name: row.name,
            dims: row.dims,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    /// The obviously correct batch version of [`event_views`].
    fn reference(rows: &[(EventRow, isize)]) -> BTreeMap<EventCell, isize> {
        let mut view = BTreeMap::new();
        for (row, diff) in rows {
            for interval in Interval::ALL {
                let cell = EventCell {
                    project: row.project,
                    interval,
                    bucket: interval.bucket_of(row.ts),
                    name: row.name,
                    dims: row.dims,
                };
                *view.entry(cell).or_default() += diff;
            }
        }
        view.retain(|_, d| *d != 0);
        view
    }

    fn random_row(rng: &mut StdRng) -> EventRow {
        EventRow {
            project: rng.random_range(0..2),
            ts: 1_700_000_000_000 + rng.random_range(0..3 * 3_600_000),
            name: rng.random_range(0..3),
            dims: EventDims {
                path: rng.random_range(0..3),
                device: rng.random_range(0..2),
                browser: rng.random_range(0..2),
                release: rng.random_range(0..2),
                props: rng.random_range(0..4),
            },
        }
    }

    /// The harness's signature; the counts keep no window of their own.
    fn ignoring_retention(rows: VecCollection<'_, Time, EventRow>, _: i64) -> VecCollection<'_, Time, EventCell> {
        event_views(rows)
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let first: Vec<EventRow> = (0..400).map(|_| random_row(&mut rng)).collect();
            let second: Vec<EventRow> = (0..200).map(|_| random_row(&mut rng)).collect();
            let retracted: Vec<EventRow> = first.iter().filter(|_| rng.random_bool(0.3)).cloned().collect();
            let batches: Vec<Vec<(EventRow, isize)>> = vec![
                first.iter().map(|r| (*r, 1)).collect(),
                second.iter().map(|r| (*r, 1)).collect(),
                retracted.iter().map(|r| (*r, -1)).collect(),
            ];
            let all = batches.concat();
            for workers in [1, 2] {
                let got = crate::testing::run(workers, batches.clone(), 10, 0, ignoring_retention);
                assert_eq!(got, reference(&all), "seed {seed}, {workers} workers");
            }
        }
    }
}
