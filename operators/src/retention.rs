//! The temporal filter behind retention.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use crate::Time;

/// Retractions due in the same second share one capability.
const SLOT_MS: Time = 1_000;
/// A due second's retractions are first consolidated at this many.
const CONSOLIDATE_AT: usize = 1_024;

/// A due second's retractions are consolidated again once half as many
/// again as were left by the last consolidation are held.
fn next_consolidation(consolidated: usize) -> usize {
    CONSOLIDATE_AT.max(consolidated + consolidated / 2)
}

/// Keeps each record until the tick `expiry(record)` and retracts it then.
/// A record already expired when it arrives is dropped. Views built on the
/// result shrink on their own as time passes.
///
/// The retractions are held here, by due time, until the frontier reaches
/// them, instead of being sent downstream at once: a batcher holding
/// millions of future updates would re-sort them on every tick. Each due
/// second's retractions are consolidated whenever they grow by half, so a
/// record repeated by many events (a view's cell) is held once, not once per
/// event.
pub fn expire_at<'s, D>(
    records: VecCollection<'s, Time, D>,
    expiry: impl Fn(&D) -> i64 + 'static,
) -> VecCollection<'s, Time, D>
where
    D: Clone + Ord + 'static,
{
    type Update<D> = (D, Time, isize);
    /// A due second's capability, retractions, and their number when last
    /// consolidated.
    type Due<D> = (Capability<Time>, Vec<Update<D>>, usize);
    records
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Update<D>>>, _, _, _>(Pipeline, "ExpireAt", move |_, _| {
            let mut due: BTreeMap<Time, Due<D>> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(output.output_index()) else {
                        return;
                    };
                    let mut now = Vec::with_capacity(data.len());
                    for (record, time, diff) in data.drain(..) {
                        let expires = u64::try_from(expiry(&record)).unwrap_or(0);
                        if expires <= time {
                            continue;
                        }
                        let slot = (expires / SLOT_MS * SLOT_MS).max(*cap.time());
                        let (_, held, consolidated) =
                            due.entry(slot).or_insert_with(|| (cap.delayed(&slot), Vec::new(), 0));
                        held.push((record.clone(), expires, -diff));
                        if held.len() >= next_consolidation(*consolidated) {
                            consolidate_updates(held);
                            *consolidated = held.len();
                            // Room for exactly the updates until the next
                            // consolidation: grown by doubling, a due hour of
                            // distinct vital samples held up to four times
                            // its updates (90 MB at 10M events).
                            let room = next_consolidation(held.len());
                            held.shrink_to(room);
                            held.reserve_exact(room - held.len());
                        }
                        now.push((record, time, diff));
                    }
                    output.session(&cap).give_iterator(now.into_iter());
                });
                // Release what the frontier has reached.
                let reached = frontier.frontier().first().copied().unwrap_or(Time::MAX);
                while let Some(entry) = due.first_entry() {
                    if *entry.key() > reached {
                        break;
                    }
                    let (cap, retractions, _) = entry.remove();
                    output.session(&cap).give_iterator(retractions.into_iter());
                }
            }
        })
        .as_collection()
}
