//! Error groups: events per group, bucket and the attributes queries filter
//! on, with their users, and each group's first and last sighting.

use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use serde::{Deserialize, Serialize};

use crate::buckets::Interval;
use crate::retention::expire_at;
use crate::{Symbol, Time};

/// One error event as the dataflow sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ErrorRow {
    pub project: Symbol,
    /// The group's fingerprint, interned.
    pub group: Symbol,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub visitor: u64,
    pub release: Symbol,
    pub path: Symbol,
    pub device: Symbol,
}

/// One cell of a group's counts: a bucket and the attributes filters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ErrorCell {
    pub bucket: i64,
    pub interval: Interval,
    pub group: Symbol,
    pub project: Symbol,
    pub release: Symbol,
    pub path: Symbol,
    pub device: Symbol,
}

/// A change to the error views; the diff says how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorUpdate {
    /// `diff` events of one user in a cell: the read model counts them and
    /// adds the user to the cell's user sketch (as it does a page view's
    /// visitor), and drops the cell with its bucket.
    Event(ErrorCell, u64),
    /// A group's first and last event time: +1 the current, -1 the old.
    Seen { project: Symbol, group: Symbol, first: i64, last: i64 },
}

/// The error views. The groups' first and last sightings are kept over the
/// events of the last `retention_ms` after their day ends.
pub fn error_group_views<'s>(
    rows: VecCollection<'s, Time, ErrorRow>,
    retention_ms: i64,
) -> VecCollection<'s, Time, ErrorUpdate> {
    let events = rows.clone().flat_map(|row| {
        Interval::KEPT.map(|interval| {
            let cell = ErrorCell {
                bucket: interval.bucket_of(row.ts),
                interval,
                group: row.group,
                project: row.project,
                release: row.release,
                path: row.path,
                device: row.device,
            };
            ErrorUpdate::Event(cell, row.visitor)
        })
    });
    // First and last sighting over the retained events; the daily bucket's
    // expiry bounds them like the counts. A `reduce` sees every distinct
    // value of its key whenever the key changes, so the extremes are taken
    // per second, then per minute, per hour and per group: a new event costs
    // at most 1,000 + 60 + 60 + (hours retained) values, not one per
    // millisecond the group was ever seen in.
    // Only a row's group and time are held until it expires: 16 bytes where
    // the whole row took 40.
    let sightings = rows.map(|row| (row.project, row.group, row.ts));
    let retained = expire_at(sightings, move |(_, _, ts)| {
        Interval::Day.bucket_of(*ts).saturating_add(Interval::Day.millis()).saturating_add(retention_ms)
    });
    let per_second = extremes(retained.map(|(project, group, ts)| ((project, group, ts.div_euclid(1_000)), (ts, ts))));
    let per_minute =
        extremes(per_second.map(|((project, group, second), seen)| ((project, group, second.div_euclid(60)), seen)));
    let per_hour =
        extremes(per_minute.map(|((project, group, minute), seen)| ((project, group, minute.div_euclid(60)), seen)));
    let seen = extremes(per_hour.map(|((project, group, _hour), seen)| ((project, group), seen)))
        .map(|((project, group), (first, last))| ErrorUpdate::Seen { project, group, first, last });
    events.concat(seen)
}

/// The earliest first and the latest last of each key's `(first, last)`
/// values.
fn extremes<'s, K: ExchangeData + Hashable>(
    sightings: VecCollection<'s, Time, (K, (i64, i64))>,
) -> VecCollection<'s, Time, (K, (i64, i64))> {
    sightings.reduce(|_key, values, out| {
        let first = values.iter().map(|((first, _), _)| *first).min();
        let last = values.iter().map(|((_, last), _)| *last).max();
        if let (Some(first), Some(last)) = (first, last) {
            out.push(((first, last), 1));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    type View = BTreeMap<ErrorUpdate, isize>;

    /// The obviously correct batch version of [`error_group_views`].
    fn reference(rows: &[ErrorRow]) -> View {
        let mut view = View::new();
        let mut seen: BTreeMap<(Symbol, Symbol), (i64, i64)> = BTreeMap::new();
        for row in rows {
            for interval in Interval::KEPT {
                let cell = ErrorCell {
                    bucket: interval.bucket_of(row.ts),
                    interval,
                    group: row.group,
                    project: row.project,
                    release: row.release,
                    path: row.path,
                    device: row.device,
                };
                *view.entry(ErrorUpdate::Event(cell, row.visitor)).or_default() += 1;
            }
            let entry = seen.entry((row.project, row.group)).or_insert((row.ts, row.ts));
            entry.0 = entry.0.min(row.ts);
            entry.1 = entry.1.max(row.ts);
        }
        view.extend(
            seen.into_iter()
                .map(|((project, group), (first, last))| (ErrorUpdate::Seen { project, group, first, last }, 1)),
        );
        view
    }

    fn run(workers: usize, batches: Vec<Vec<(ErrorRow, isize)>>, until: Time) -> View {
        crate::testing::run(workers, batches, until, i64::MAX / 4, error_group_views)
    }

    /// Rows over `span_ms`: short spans put many in one second or minute,
    /// so retractions move the extremes inside them.
    fn random_rows(rng: &mut StdRng, n: usize, span_ms: i64) -> Vec<ErrorRow> {
        (0..n)
            .map(|_| ErrorRow {
                project: rng.random_range(0..2),
                group: rng.random_range(0..5),
                ts: 1_700_000_000_000 + rng.random_range(0..span_ms),
                visitor: rng.random_range(0..10),
                release: rng.random_range(0..2),
                path: rng.random_range(0..3),
                device: rng.random_range(0..2),
            })
            .collect()
    }

    #[test]
    fn matches_the_reference_with_inserts_and_retractions() {
        for (seed, span_ms) in (0..6u64).zip([2 * 3_600_000, 5_000, 3 * 60_000].into_iter().cycle()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let first = random_rows(&mut rng, 200, span_ms);
            let second = random_rows(&mut rng, 100, span_ms);
            let retracted: Vec<ErrorRow> = first.iter().filter(|_| rng.random_bool(0.4)).copied().collect();
            let mut kept = first.clone();
            for r in &retracted {
                let pos = kept.iter().position(|k| k == r).unwrap();
                kept.remove(pos);
            }
            kept.extend(second.iter().copied());
            let batches = vec![
                first.into_iter().map(|r| (r, 1)).collect(),
                second.into_iter().map(|r| (r, 1)).collect(),
                retracted.into_iter().map(|r| (r, -1)).collect(),
            ];
            for workers in [1, 2, 3] {
                assert_eq!(run(workers, batches.clone(), 10), reference(&kept), "seed {seed}, {workers} workers");
            }
        }
    }
}
