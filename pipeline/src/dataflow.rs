//! The dataflow graph, read top to bottom like the brief's data path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::input::InputSession;
use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::{InputHandleVec, ProbeHandle, StreamVec};
use timely::worker::Worker;

use sightline_operators::{
    ErrorRow, EventRow, Interval, PageviewRow, RuleSpec, SessionHit, SignalRow, Time, VitalRow, anomaly_scores,
    error_group_views, new_group_signal, rule_windows, session_views, vital_views,
};

use crate::runtime::{Forwarded, RowMaker, Rows, TickHook};
use crate::views::{ViewStore, ViewUpdate};

/// The inputs of one worker's dataflow.
pub struct Inputs {
    pub pageviews: InputSession<Time, PageviewRow, isize>,
    pub errors: InputSession<Time, ErrorRow, isize>,
    pub vitals: InputSession<Time, VitalRow, isize>,
    pub events: InputSession<Time, EventRow, isize>,
    pub sessions: InputSession<Time, SessionHit, isize>,
    pub signals: InputSession<Time, SignalRow, isize>,
    /// Alert rules: fed on worker 0 only.
    pub rules: InputSession<Time, RuleSpec, isize>,
    /// The current (hour start ms, minute of the hour), for anomaly
    /// scores: one record, kept by worker 0.
    pub clock: InputSession<Time, (i64, i64), isize>,
    /// Batches a cluster's other processes archived, on their way to
    /// process 0, which makes their rows.
    pub forwarded: InputHandleVec<Time, Forwarded>,
}

impl Inputs {
    /// The inputs' common time.
    pub fn time(&self) -> Time {
        *self.pageviews.time()
    }

    /// Moves every input to `time` and sends what was buffered.
    pub fn advance_to(&mut self, time: Time) {
        if time > self.time() {
            self.pageviews.advance_to(time);
            self.errors.advance_to(time);
            self.vitals.advance_to(time);
            self.events.advance_to(time);
            self.sessions.advance_to(time);
            self.signals.advance_to(time);
            self.rules.advance_to(time);
            self.clock.advance_to(time);
            self.forwarded.advance_to(time);
        }
        self.pageviews.flush();
        self.errors.flush();
        self.vitals.flush();
        self.events.flush();
        self.sessions.flush();
        self.signals.flush();
        self.rules.flush();
        self.clock.flush();
        self.forwarded.flush();
    }
}

/// What the forwarded batches need on process 0.
pub struct Forwarding {
    pub(crate) rows: Arc<RowMaker>,
    /// Worker threads per process: process 0's workers are the first this many.
    pub(crate) process_workers: usize,
    /// Processes whose end-of-replay mark has reached process 0.
    pub(crate) replayed: Arc<AtomicUsize>,
}

/// One row of a forwarded batch, for its input.
#[derive(Clone)]
enum ForwardedRow {
    Pageview(PageviewRow),
    Error(ErrorRow),
    Vital(VitalRow),
    Event(EventRow),
    Session(SessionHit),
    Signal(SignalRow),
}

/// The rows of forwarded batches, one collection per input.
struct ForwardedRows<'s> {
    pageviews: VecCollection<'s, Time, PageviewRow>,
    errors: VecCollection<'s, Time, ErrorRow>,
    vitals: VecCollection<'s, Time, VitalRow>,
    events: VecCollection<'s, Time, EventRow>,
    sessions: VecCollection<'s, Time, SessionHit>,
    signals: VecCollection<'s, Time, SignalRow>,
}

impl ForwardedRow {
    fn of(rows: Rows) -> impl Iterator<Item = ForwardedRow> {
        let Rows { pageviews, errors, vitals, events, sessions, signals, .. } = rows;
        (pageviews.into_iter().map(ForwardedRow::Pageview))
            .chain(errors.into_iter().map(ForwardedRow::Error))
            .chain(vitals.into_iter().map(ForwardedRow::Vital))
            .chain(events.into_iter().map(ForwardedRow::Event))
            .chain(sessions.into_iter().map(ForwardedRow::Session))
            .chain(signals.into_iter().map(ForwardedRow::Signal))
    }
}

/// The rows of forwarded batches, made on process 0's workers (spread over
/// them by the batch's bytes). Alone, nothing is ever forwarded.
fn forwarded_rows<'s>(batches: StreamVec<'s, Time, Forwarded>, forwarding: Forwarding) -> ForwardedRows<'s> {
    let Forwarding { rows, process_workers, replayed } = forwarding;
    let to_process_0 = Exchange::new(move |(_, bytes): &Forwarded| {
        let spread = bytes.iter().rev().take(16).fold(bytes.len() as u64, |h, b| h.wrapping_mul(31) ^ u64::from(*b));
        spread % process_workers as u64
    });
    let made = batches.unary::<CapacityContainerBuilder<Vec<(ForwardedRow, Time, isize)>>, _, _, _>(
        to_process_0,
        "MakeForwardedRows",
        move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let time = *cap.least().expect("a totally ordered time");
                    let mut session = output.session(&cap);
                    for (process, bytes) in data.drain(..) {
                        if bytes.is_empty() {
                            replayed.fetch_add(1, Ordering::AcqRel);
                            tracing::info!(process, "a worker process's replay reached process 0");
                            continue;
                        }
                        match sightline_model::Envelope::decode(&bytes) {
                            Ok(envelope) => {
                                if let Some(made) = rows.rows(envelope) {
                                    session.give_iterator(ForwardedRow::of(made).map(|row| (row, time, 1)));
                                }
                            }
                            Err(e) => {
                                tracing::error!(process, error = %e, "skipping a forwarded batch that does not decode")
                            }
                        }
                    }
                });
            }
        },
    );
    // One stream per kind of row, each mapped to its input's records.
    let mut kinds = made
        .partition(6, |(row, t, r)| {
            let kind = match &row {
                ForwardedRow::Pageview(_) => 0,
                ForwardedRow::Error(_) => 1,
                ForwardedRow::Vital(_) => 2,
                ForwardedRow::Event(_) => 3,
                ForwardedRow::Session(_) => 4,
                ForwardedRow::Signal(_) => 5,
            };
            (kind, (row, t, r))
        })
        .into_iter();
    let mut next = || kinds.next().expect("a stream per kind of forwarded row");
    macro_rules! kind {
        ($variant:ident) => {
            next()
                .flat_map(|(row, t, r)| match row {
                    ForwardedRow::$variant(x) => Some((x, t, r)),
                    _ => None,
                })
                .as_collection()
        };
    }
    ForwardedRows {
        pageviews: kind!(Pageview),
        errors: kind!(Error),
        vitals: kind!(Vital),
        events: kind!(Event),
        sessions: kind!(Session),
        signals: kind!(Signal),
    }
}

/// Builds the dataflow on one worker and returns its inputs and a probe on
/// the view updates.
pub fn build(
    worker: &mut Worker,
    retention_ms: i64,
    views: Arc<ViewStore>,
    forwarding: Forwarding,
    on_tick: Option<TickHook>,
) -> (Inputs, ProbeHandle<Time>) {
    let mut pageviews = InputSession::new();
    let mut errors = InputSession::new();
    let mut vitals = InputSession::new();
    let mut events = InputSession::new();
    let mut sessions = InputSession::new();
    let mut signals = InputSession::new();
    let mut rules = InputSession::new();
    let mut clock = InputSession::new();
    let mut forwarded = InputHandleVec::new();
    let index = worker.index();
    let probe = worker.dataflow::<Time, _, _>(|scope| {
        let remote = forwarded_rows(forwarded.to_stream(scope), forwarding);
        let pageview_rows = pageviews.to_collection(scope).concat(remote.pageviews);
        let error_rows = errors.to_collection(scope).concat(remote.errors);
        let vital_rows = vitals.to_collection(scope).concat(remote.vitals);
        let event_rows = events.to_collection(scope).concat(remote.events);
        let session_hits = sessions.to_collection(scope).concat(remote.sessions);
        let signal_rows = signals.to_collection(scope).concat(remote.signals);
        let hour = |ts: i64| Interval::Hour.bucket_of(ts);
        let anomaly_updates = anomaly_scores(
            pageview_rows.clone().map(move |r: PageviewRow| (r.project, hour(r.ts))),
            error_rows.clone().map(move |r: ErrorRow| (r.project, hour(r.ts))),
            vital_rows.clone().map(move |r: VitalRow| (r.project, r.metric, hour(r.ts), r.value)),
            clock.to_collection(scope),
        )
        .map(ViewUpdate::Anomaly);
        // Page views go to the read model row by row (see `PageviewRow`).
        let page_updates = pageview_rows.map(ViewUpdate::Pageview);
        let error_views = error_group_views(error_rows, retention_ms);
        let new_groups = error_views.clone().flat_map(|u| new_group_signal(&u));
        let error_updates = error_views.map(ViewUpdate::Error);
        let vital_updates = vital_views(vital_rows).map(ViewUpdate::Vital);
        let event_updates = event_rows.map(ViewUpdate::Event);
        let session_updates = session_views(session_hits, retention_ms).map(ViewUpdate::Session);
        let signals = signal_rows.concat(new_groups);
        let rule_updates = rule_windows(signals, rules.to_collection(scope)).map(ViewUpdate::Rule);
        let updates = page_updates
            .concat(error_updates)
            .concat(vital_updates)
            .concat(event_updates)
            .concat(session_updates)
            .concat(rule_updates)
            .concat(anomaly_updates);
        apply_to_views(updates, index, views, on_tick)
    });
    (Inputs { pageviews, errors, vitals, events, sessions, signals, rules, clock, forwarded }, probe)
}

/// The serving sink: gathers every update on worker 0 and holds it until the
/// frontier has passed its tick (so a reader never sees half a tick). The
/// updates of all finished ticks then go to the view applier thread, which
/// consolidates and applies them while worker 0 goes on with the next tick:
/// applied in the sink, the views held worker 0 (and worker 1, waiting at
/// the exchange) for a third of the time. At most a few ticks wait for it;
/// past that the sink waits, which holds back the dataflow and, through the
/// queue, ingest.
fn apply_to_views<'s>(
    updates: VecCollection<'s, Time, ViewUpdate>,
    worker: usize,
    views: Arc<ViewStore>,
    on_tick: Option<TickHook>,
) -> ProbeHandle<Time> {
    let (probe, stream) = updates.inner.probe();
    let mut pending: Vec<(ViewUpdate, Time, isize)> = Vec::new();
    let mut applied: Time = 0;
    let mut applier = (worker == 0).then(|| ViewApplier::start(views, on_tick));
    stream.sink(Exchange::new(|_: &(ViewUpdate, Time, isize)| 0u64), "ApplyToViews", move |(input, frontier)| {
        input.for_each(|_cap, data| pending.append(data));
        let Some(applier) = applier.as_mut() else {
            return;
        };
        let through = frontier.frontier().iter().next().copied().unwrap_or(Time::MAX);
        if through > applied {
            let finished = pending.extract_if(.., |(_, time, _)| *time < through);
            applier.send(through, finished.map(|(update, _, diff)| (update, diff)));
            applied = through;
        }
    });
    probe
}

/// Updates of finished ticks, on their way to the views.
type Ticks = (Time, Vec<(ViewUpdate, isize)>);

/// The thread that applies finished ticks to the views, in order. Emptied
/// buffers come back for reuse: growing fresh ones each tick had the kernel
/// zero new pages for a fifth of worker 0's time.
struct ViewApplier {
    ticks: std::sync::mpsc::SyncSender<Ticks>,
    emptied: std::sync::mpsc::Receiver<Vec<(ViewUpdate, isize)>>,
}

/// Finished ticks that may wait for the applier before the sink waits.
const TICKS_AHEAD: usize = 4;

impl ViewApplier {
    fn start(views: Arc<ViewStore>, mut on_tick: Option<TickHook>) -> ViewApplier {
        let (ticks, to_apply) = std::sync::mpsc::sync_channel::<Ticks>(TICKS_AHEAD);
        let (give_back, emptied) = std::sync::mpsc::channel();
        let apply = move || {
            for (through, mut ready) in to_apply {
                consolidate(&mut ready);
                views.apply(through, &ready);
                if let Some(on_tick) = on_tick.as_mut() {
                    on_tick(through, &ready);
                }
                ready.clear();
                let _ = give_back.send(ready);
            }
        };
        std::thread::Builder::new().name("view-applier".into()).spawn(apply).expect("a thread for the view applier");
        ViewApplier { ticks, emptied }
    }

    fn send(&mut self, through: Time, updates: impl Iterator<Item = (ViewUpdate, isize)>) {
        let mut ready = self.emptied.try_recv().unwrap_or_default();
        ready.extend(updates);
        // The applier ends only when this sender is dropped, or by a panic:
        // that one is raised here too, as it was when the sink applied.
        self.ticks.send((through, ready)).expect("the view applier thread has stopped");
    }
}
