//! The dataflow graph, read top to bottom like the brief's data path.

use std::collections::BTreeMap;
use std::sync::Arc;

use differential_dataflow::VecCollection;
use differential_dataflow::consolidation::consolidate;
use differential_dataflow::input::InputSession;
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::operator::Operator;
use timely::worker::Worker;

use sightline_operators::{PageviewRow, PageviewUpdate, Time, pageview_views};

use crate::views::ViewStore;

/// The inputs of one worker's dataflow.
pub struct Inputs {
    pub pageviews: InputSession<Time, PageviewRow, isize>,
}

/// Builds the dataflow on one worker and returns its inputs and a probe on
/// the view updates.
pub fn build(worker: &mut Worker, retention_ms: i64, views: Arc<ViewStore>) -> (Inputs, ProbeHandle<Time>) {
    let mut pageviews = InputSession::new();
    let index = worker.index();
    let probe = worker.dataflow::<Time, _, _>(|scope| {
        let rows = pageviews.to_collection(scope);
        let updates = pageview_views(rows, retention_ms);
        apply_to_views(updates, index, views)
    });
    (Inputs { pageviews }, probe)
}

/// The serving sink: gathers every update on worker 0, holds it until the
/// frontier has passed its tick (so a reader never sees half a tick), then
/// applies the consolidated updates of all finished ticks at once.
fn apply_to_views<'s>(
    updates: VecCollection<'s, Time, PageviewUpdate>,
    worker: usize,
    views: Arc<ViewStore>,
) -> ProbeHandle<Time> {
    let (probe, stream) = updates.inner.probe();
    let mut pending: BTreeMap<Time, Vec<(PageviewUpdate, isize)>> = BTreeMap::new();
    let mut applied: Time = 0;
    stream.sink(Exchange::new(|_: &(PageviewUpdate, Time, isize)| 0u64), "ApplyToViews", move |(input, frontier)| {
        input.for_each(|_cap, data| {
            for (update, time, diff) in data.drain(..) {
                pending.entry(time).or_default().push((update, diff));
            }
        });
        if worker != 0 {
            return;
        }
        let through = frontier.frontier().iter().next().copied().unwrap_or(Time::MAX);
        if through > applied {
            let later = pending.split_off(&through);
            let mut ready: Vec<(PageviewUpdate, isize)> =
                std::mem::replace(&mut pending, later).into_values().flatten().collect();
            consolidate(&mut ready);
            views.apply(through, &ready);
            applied = through;
        }
    });
    probe
}
