//! Error groups: events per group, bucket and the attributes queries filter
//! on, with their users, and each group's first and last sighting.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, Hashable, VecCollection};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use crate::buckets::Interval;
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
    events.concat(first_and_last_seen(rows, retention_ms))
}

/// A group: (project, fingerprint).
type GroupKey = (Symbol, Symbol);

/// Each group's first and last sighting over its retained events: a day's
/// events count until the tick its bucket ends plus `retention_ms`, as the
/// read model's buckets do, and one already past that when it arrives does
/// not count.
///
/// Each worker keeps its groups' sightings ([`Sightings`]) and, once
/// a tick is complete, publishes the changed extremes: the old retracted,
/// the new inserted. A day's sightings leave at once, when its expiry tick
/// is reached. At 10M events it holds about 5 MB where its dataflow form
/// took 76 (retractions held by `expire_at`, then a `reduce` of the
/// extremes per second, minute, hour and group, each arranged).
fn first_and_last_seen<'s>(
    rows: VecCollection<'s, Time, ErrorRow>,
    retention_ms: i64,
) -> VecCollection<'s, Time, ErrorUpdate> {
    type Sighting = ((GroupKey, i64), Time, isize);
    type Out = (ErrorUpdate, Time, isize);
    /// A tick's sightings, until the tick is complete.
    type Tick = (Capability<Time>, Vec<((GroupKey, i64), isize)>);
    /// The (group, day start) pairs whose sightings leave at one tick.
    type Leaving = (Capability<Time>, BTreeSet<(GroupKey, i64)>);
    let day_leaves = move |ts: i64| {
        let end = Interval::Day.bucket_of(ts).saturating_add(Interval::Day.millis());
        Time::try_from(end.saturating_add(retention_ms)).unwrap_or(0)
    };
    let exchange = Exchange::new(|((group, _), _, _): &Sighting| group.hashed());
    rows.map(|row| ((row.project, row.group), row.ts))
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(exchange, "FirstAndLastSeen", move |_, _| {
            let mut groups: HashMap<GroupKey, Sightings> = HashMap::new();
            let mut pending: BTreeMap<Time, Tick> = BTreeMap::new();
            let mut expiring: BTreeMap<Time, Leaving> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for ((group, ts), time, diff) in data.drain(..) {
                        let (_, held) = pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, output.output_index()), Vec::new()));
                        held.push(((group, ts), diff));
                    }
                });
                let reached = frontier.frontier().first().copied().unwrap_or(Time::MAX);
                loop {
                    let next_tick = pending.first_key_value().map(|(t, _)| *t).filter(|t| *t < reached);
                    let next_expiry = expiring.first_key_value().map(|(t, _)| *t).filter(|t| *t < reached);
                    let mut before: HashMap<GroupKey, Option<(i64, i64)>> = HashMap::new();
                    let tick_first = match (next_tick, next_expiry) {
                        (None, None) => break,
                        (Some(tick), Some(expiry)) => tick <= expiry,
                        (tick, _) => tick.is_some(),
                    };
                    let cap = if tick_first {
                        let (tick, (cap, mut held)) = pending.pop_first().expect("a complete tick");
                        // Net changes only: a sighting retracted in the tick
                        // that brought it is never held.
                        consolidate(&mut held);
                        for ((group, ts), diff) in held {
                            let expires = day_leaves(ts);
                            if expires <= tick {
                                continue;
                            }
                            let times = groups.entry(group).or_default();
                            before.entry(group).or_insert_with(|| extremes(times));
                            times.change(ts, diff);
                            let (_, days) =
                                expiring.entry(expires).or_insert_with(|| (cap.delayed(&expires), BTreeSet::new()));
                            days.insert((group, Interval::Day.bucket_of(ts)));
                        }
                        cap
                    } else {
                        let (_, (cap, days)) = expiring.pop_first().expect("a reached expiry");
                        for (group, day) in days {
                            if let Some(times) = groups.get_mut(&group) {
                                before.entry(group).or_insert_with(|| extremes(times));
                                times.forget(day..day.saturating_add(Interval::Day.millis()));
                            }
                        }
                        cap
                    };
                    let time = *cap.time();
                    let mut session = output.session(&cap);
                    for (group, old) in before {
                        let new = groups.get(&group).and_then(extremes);
                        if new.is_none() {
                            groups.remove(&group);
                        }
                        if old != new {
                            let update = |(first, last): (i64, i64)| ErrorUpdate::Seen {
                                project: group.0,
                                group: group.1,
                                first,
                                last,
                            };
                            session.give_iterator(
                                old.map(|seen| (update(seen), time, -1))
                                    .into_iter()
                                    .chain(new.map(|seen| (update(seen), time, 1))),
                            );
                        }
                    }
                }
            }
        })
        .as_collection()
}

/// The earliest and the latest of a group's sighting times.
fn extremes(times: &Sightings) -> Option<(i64, i64)> {
    Some((*times.0.first()?, *times.0.last()?))
}

/// A group's sighting times, sorted, one entry per event: 8 bytes an event
/// where a `BTreeMap` of times and counts took about 60. Events come in
/// time order but for late ones (at most an hour late), so an event is
/// added at the end or near it.
#[derive(Debug, Default)]
struct Sightings(Vec<i64>);

impl Sightings {
    /// Adds `diff` sightings at `ts`, or takes `-diff` away (as many as
    /// there are).
    fn change(&mut self, ts: i64, diff: isize) {
        let times = &mut self.0;
        if diff > 0 {
            let at = if times.last().is_none_or(|last| *last <= ts) {
                times.len()
            } else {
                times.partition_point(|t| *t <= ts)
            };
            times.splice(at..at, std::iter::repeat_n(ts, diff.unsigned_abs()));
        } else {
            let from = times.partition_point(|t| *t < ts);
            let to = times[from..].partition_point(|t| *t == ts).min(diff.unsigned_abs());
            times.drain(from..from + to);
        }
    }

    /// Takes away every sighting in `range`, and the room it leaves.
    fn forget(&mut self, range: std::ops::Range<i64>) {
        let times = &mut self.0;
        let from = times.partition_point(|t| *t < range.start);
        let to = times.partition_point(|t| *t < range.end);
        times.drain(from..to);
        if times.capacity() > 2 * times.len() + 64 {
            times.shrink_to(times.len() + times.len() / 4);
        }
    }
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

    #[test]
    fn sightings_keep_their_times_sorted_through_late_ones_retractions_and_expiry() {
        let mut times = Sightings::default();
        for (ts, diff) in [(10, 1), (30, 2), (20, 1), (30, -1), (5, 1), (40, -1), (20, 1), (10, -3)] {
            times.change(ts, diff);
        }
        assert_eq!(times.0, [5, 20, 20, 30]);
        assert_eq!(extremes(&times), Some((5, 30)));
        times.forget(20..30);
        assert_eq!(times.0, [5, 30]);
        times.forget(0..100);
        assert_eq!(extremes(&times), None);
    }

    /// A day's sightings leave the first and last seen at the tick its
    /// bucket ends plus the retention (the counts stay: the read model drops
    /// their buckets), and one already past it on arrival is not counted.
    #[test]
    fn a_day_s_sightings_leave_at_its_expiry_tick() {
        const RETENTION_MS: i64 = 4;
        let day = Interval::Day.millis();
        // Days -1 and 0: the first leaves at tick 4, the second long after.
        let rows = |rng: &mut StdRng, n| -> Vec<ErrorRow> {
            random_rows(rng, n, 2 * day)
                .into_iter()
                .map(|r| ErrorRow { ts: r.ts - 1_700_000_000_000 - day, ..r })
                .collect()
        };
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let (first, second) = (rows(&mut rng, 150), rows(&mut rng, 150));
            let retracted: Vec<ErrorRow> = first.iter().filter(|_| rng.random_bool(0.3)).copied().collect();
            let mut kept = first.clone();
            for r in &retracted {
                kept.remove(kept.iter().position(|k| k == r).unwrap());
            }
            kept.extend(&second);
            // Arrived at tick 5, after day -1 left: not counted there.
            let late: Vec<ErrorRow> = rows(&mut rng, 40).into_iter().filter(|r| r.ts < 0).collect();
            let batches = vec![
                first.into_iter().map(|r| (r, 1)).collect(),
                second.into_iter().map(|r| (r, 1)).collect(),
                retracted.into_iter().map(|r| (r, -1)).collect(),
                vec![],
                late.iter().map(|r| (*r, 1)).collect(),
            ];
            let seen_of = |rows: &[ErrorRow]| -> View {
                reference(rows).into_iter().filter(|(u, _)| matches!(u, ErrorUpdate::Seen { .. })).collect()
            };
            let events_of = |rows: &[ErrorRow]| -> View {
                reference(rows).into_iter().filter(|(u, _)| matches!(u, ErrorUpdate::Event(..))).collect()
            };
            let day_zero: Vec<ErrorRow> = kept.iter().filter(|r| r.ts >= 0).copied().collect();
            let mut all = kept.clone();
            all.extend(&late);
            for workers in [1, 2, 3] {
                let run = |batches: &[Vec<(ErrorRow, isize)>], until| {
                    crate::testing::run(workers, batches.to_vec(), until, RETENTION_MS, error_group_views)
                };
                let mut before = events_of(&kept);
                before.extend(seen_of(&kept));
                assert_eq!(run(&batches[..3], 4), before, "seed {seed}, {workers} workers, before day -1 leaves");
                let mut after = events_of(&all);
                after.extend(seen_of(&day_zero));
                assert_eq!(run(&batches, 10), after, "seed {seed}, {workers} workers, after");
            }
        }
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
