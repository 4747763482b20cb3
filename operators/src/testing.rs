//! The harness every operator's reference test runs through.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::VecCollection;
use differential_dataflow::input::InputSession;
use timely::dataflow::operators::{Inspect, Probe};

use crate::Time;

/// Runs `operator(rows, retention_ms)` on `workers` workers over timed
/// batches of (row, diff) (batch *i* at tick *i + 1*, rows spread over the
/// workers) and returns its output accumulated as of tick `until`, zero
/// diffs dropped.
pub fn run<R, U>(
    workers: usize,
    batches: Vec<Vec<(R, isize)>>,
    until: Time,
    retention_ms: i64,
    operator: fn(VecCollection<'_, Time, R>, i64) -> VecCollection<'_, Time, U>,
) -> BTreeMap<U, isize>
where
    R: differential_dataflow::ExchangeData + Copy + std::hash::Hash + Sync,
    U: differential_dataflow::ExchangeData + Copy + std::hash::Hash + Sync,
{
    let out: Arc<Mutex<BTreeMap<U, isize>>> = Arc::default();
    let sink = out.clone();
    let batches = Arc::new(batches);
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input: InputSession<Time, R, isize> = InputSession::new();
        let sink = sink.clone();
        let probe = worker.dataflow(|scope| {
            // The view as of `until`: retractions scheduled later are not in it yet.
            operator(input.to_collection(scope), retention_ms)
                .inner
                .inspect(move |(update, time, diff)| {
                    if *time < until {
                        *sink.lock().unwrap().entry(*update).or_default() += diff;
                    }
                })
                .probe()
                .0
        });
        for (i, batch) in batches.iter().enumerate() {
            input.advance_to(i as Time + 1);
            for (j, (row, diff)) in batch.iter().enumerate() {
                if j % worker.peers() == worker.index() {
                    input.update(*row, *diff);
                }
            }
        }
        input.advance_to(until);
        input.flush();
        while probe.less_than(&until) {
            worker.step();
        }
    })
    .unwrap();
    let mut view = Arc::try_unwrap(out).unwrap().into_inner().unwrap();
    view.retain(|_, diff| *diff != 0);
    view
}
