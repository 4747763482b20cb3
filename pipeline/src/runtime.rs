//! Runs the timely workers and feeds them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use sightline_model::{Envelope, Event, EventKind};
use sightline_operators::vitals::quantize;
use sightline_operators::{
    ErrorRow, EventRow, MAX_WINDOW_S, PageviewRow, RuleSpec, SessionHit, Signal, SignalRow, Symbol, Time, VitalRow,
};

use crate::dataflow;
use crate::now_ms;
use crate::rows::{EventSymbols, error_row, event_row, pageview_row, session_hit, vital_row};
use crate::views::{LATEST_EVENTS, ViewStore, ViewUpdate};

/// One batch's rows for each input.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) pageviews: Vec<PageviewRow>,
    pub(crate) errors: Vec<ErrorRow>,
    pub(crate) vitals: Vec<VitalRow>,
    pub(crate) events: Vec<EventRow>,
    pub(crate) sessions: Vec<SessionHit>,
    pub(crate) signals: Vec<SignalRow>,
    /// Alert rules added (+1) or removed (−1); only ever sent to worker 0.
    pub(crate) rules: Vec<(RuleSpec, isize)>,
    /// Signals of a project from before its first rule, with counts.
    pub(crate) backfill: Vec<(SignalRow, isize)>,
}

impl Rows {
    /// Rows with room for those of `events`.
    fn with_room_for(events: &[Event]) -> Rows {
        let mut counts = [0; EventKind::TYPE_NAMES.len()];
        for event in events {
            counts[event.kind.type_index()] += 1;
        }
        let [pageviews, custom, errors, vitals] = counts;
        Rows {
            pageviews: Vec::with_capacity(pageviews),
            events: Vec::with_capacity(custom),
            errors: Vec::with_capacity(errors),
            vitals: Vec::with_capacity(vitals),
            sessions: Vec::with_capacity(pageviews + custom),
            ..Rows::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.pageviews.is_empty()
            && self.errors.is_empty()
            && self.vitals.is_empty()
            && self.events.is_empty()
            && self.sessions.is_empty()
            && self.rules.is_empty()
    }
}

/// What a worker is handed.
enum Handed {
    /// A batch's rows, made in this process.
    Rows(Rows),
    /// A batch archived by this process (not process 0 of a cluster), as
    /// its encoded [`Envelope`], for process 0 to make its rows; or, empty,
    /// the mark that this process has handed over its whole replay.
    Forwarded(Forwarded),
}

/// An encoded [`Envelope`] on its way to process 0, with the process it
/// comes from; an empty payload marks the end of that process's replay.
pub type Forwarded = (u32, Vec<u8>);

type HandedReceiver = mpsc::Receiver<Handed>;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Timely worker threads.
    pub workers: usize,
}

/// This process's place in a timely cluster of worker processes. Process 0
/// makes every batch's rows (the interner, and so the symbols, are its
/// own), holds the views and applies every update; the others archive
/// their partitions' batches and forward them to it, and every process's
/// workers share the operators' work, records exchanged by key.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This process's index in `peers`.
    pub process: usize,
    /// `host:port` of every process's timely endpoint, in process order.
    pub peers: Vec<String>,
}

/// Called on worker 0's view applier after each tick is applied to the
/// views, with the tick's consolidated updates (the cluster's view feed).
pub type TickHook = Box<dyn FnMut(Time, &[(ViewUpdate, isize)]) + Send>;

#[derive(Debug, thiserror::Error)]
#[error("cannot start the pipeline: {0}")]
pub struct PipelineError(String);

/// The handle the rest of the process uses to feed the workers.
pub struct Pipeline {
    inputs: Vec<mpsc::Sender<Handed>>,
    next_worker: AtomicUsize,
    /// Wall-clock ms of the newest hand-over; the views have caught up once
    /// they are applied past it.
    last_push: Arc<AtomicU64>,
    /// Batches handed over and not yet taken by a worker.
    queued: Arc<AtomicI64>,
    rows: Arc<RowMaker>,
    /// This process's index in its cluster (0 alone).
    process: usize,
    processes: usize,
    /// On process 0: the other processes whose replay has reached it.
    replayed: Arc<AtomicUsize>,
    runner: Mutex<Option<JoinHandle<()>>>,
}

/// Makes a batch's rows: on process 0 only, whose interner names the
/// symbols.
pub(crate) struct RowMaker {
    views: Arc<ViewStore>,
    /// Deleted projects, whose batches are not handed over.
    deleted: RwLock<HashSet<String>>,
    /// Projects that have had alert rules since the start: only their
    /// events are signals for the rules' windows.
    alerted: RwLock<HashSet<Symbol>>,
}

/// How long an idle worker sleeps before it looks for work again.
const IDLE_PARK: Duration = Duration::from_millis(5);
/// How often time advances when nothing arrives: what is due (retention)
/// still happens, without a tick through the dataflow every few ms (idle
/// CPU went from 7 % to under 1 %).
const IDLE_ADVANCE_MS: u64 = 1_000;
/// The least time between two ticks. A tick costs the workers about the
/// same whatever it carries (progress tracking, the `reduce`s' and the
/// arrangements' upkeep): ticking as soon as the last tick finished, they
/// took 21 s of CPU for 1M events sent at 20k/s, and 16 s at this spacing
/// (bench/README.md). Waiting gathers the batches of the meantime into one
/// tick, at up to this much more delay from event to view.
const MIN_TICK_MS: u64 = 20;

impl Pipeline {
    /// Starts `config.workers` timely workers applying updates to `views`.
    pub fn start(config: PipelineConfig, views: Arc<ViewStore>) -> Result<Pipeline, PipelineError> {
        Pipeline::start_in_cluster(config, None, views, None)
    }

    /// Starts this process's `config.workers` timely workers, alone or as
    /// one process of `cluster` (which returns once every peer is
    /// connected). On process 0, `on_tick` sees each tick applied to the
    /// views.
    pub fn start_in_cluster(
        config: PipelineConfig,
        cluster: Option<ClusterConfig>,
        views: Arc<ViewStore>,
        on_tick: Option<TickHook>,
    ) -> Result<Pipeline, PipelineError> {
        let workers = config.workers.max(1);
        let (process, processes) = cluster.as_ref().map_or((0, 1), |c| (c.process, c.peers.len()));
        let timely_config = match cluster {
            None => timely::Config::process(workers),
            Some(cluster) => {
                if cluster.process >= cluster.peers.len() {
                    return Err(PipelineError(format!(
                        "process {} is not among the {} peers",
                        cluster.process,
                        cluster.peers.len()
                    )));
                }
                timely::Config {
                    communication: timely::CommunicationConfig::Cluster {
                        threads: workers,
                        process: cluster.process,
                        addresses: cluster.peers,
                        report: false,
                        zerocopy: false,
                    },
                    worker: timely::WorkerConfig::default(),
                }
            }
        };
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::channel()).unzip();
        let receivers: Arc<Mutex<Vec<Option<HandedReceiver>>>> =
            Arc::new(Mutex::new(receivers.into_iter().map(Some).collect()));
        let queued = Arc::new(AtomicI64::new(0));
        let rows = Arc::new(RowMaker { views, deleted: RwLock::default(), alerted: RwLock::default() });
        let worker_rows = rows.clone();
        let worker_queued = queued.clone();
        let last_push = Arc::new(AtomicU64::new(0));
        let worker_last_push = last_push.clone();
        let replayed = Arc::new(AtomicUsize::new(0));
        let worker_replayed = replayed.clone();
        let on_tick = Mutex::new(on_tick);
        let retention_ms = rows.views.retention_ms();
        let guards = timely::execute(timely_config, move |worker| {
            let rx =
                receivers.lock().expect("receivers")[worker.index() % workers].take().expect("one receiver per worker");
            let feed = if worker.index() == 0 { on_tick.lock().expect("the tick hook").take() } else { None };
            let forwarding = dataflow::Forwarding {
                rows: worker_rows.clone(),
                process_workers: workers,
                replayed: worker_replayed.clone(),
            };
            let (mut inputs, probe) =
                dataflow::build(worker, retention_ms, worker_rows.views.clone(), forwarding, feed);
            // Worker 0 keeps the dataflow's clock: (hour start, minute of the hour).
            let mut clock: Option<(i64, i64)> = None;
            loop {
                // While the dataflow has not finished the last tick, only
                // work: queued batches wait in the channel, where they are
                // counted (and refused with 429 past a limit), and the next
                // tick takes all of them at once.
                // (Parking only happens when no operator has work; a
                // message from another worker wakes the thread.)
                if probe.less_than(&inputs.time()) {
                    worker.step_or_park(Some(IDLE_PARK));
                    continue;
                }
                // Read the clock before draining: a batch handed over after
                // this instant carries a later push time than this tick.
                let now = now_ms();
                let next_tick = inputs.time() + MIN_TICK_MS;
                if now < next_tick {
                    worker.step_or_park(Some(Duration::from_millis(next_tick - now)));
                    continue;
                }
                let (mut received, mut closed) = (false, false);
                loop {
                    match rx.try_recv() {
                        Ok(Handed::Forwarded(batch)) => {
                            received = true;
                            worker_queued.fetch_sub(1, Ordering::Relaxed);
                            inputs.forwarded.send(batch);
                        }
                        Ok(Handed::Rows(rows)) => {
                            received = true;
                            worker_queued.fetch_sub(1, Ordering::Relaxed);
                            for row in rows.pageviews {
                                inputs.pageviews.insert(row);
                            }
                            for row in rows.errors {
                                inputs.errors.insert(row);
                            }
                            for row in rows.vitals {
                                inputs.vitals.insert(row);
                            }
                            for row in rows.events {
                                inputs.events.insert(row);
                            }
                            for hit in rows.sessions {
                                inputs.sessions.insert(hit);
                            }
                            for row in rows.signals {
                                inputs.signals.insert(row);
                            }
                            for (rule, diff) in rows.rules {
                                inputs.rules.update(rule, diff);
                            }
                            for (signal, count) in rows.backfill {
                                inputs.signals.update(signal, count);
                            }
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                // Every worker follows a hand-over to any of them, so the
                // frontier (and with it the views) moves past it at once.
                if worker.index() == 0 {
                    let minute = (now as i64).div_euclid(60_000);
                    let reading = (minute.div_euclid(60) * 3_600_000, minute.rem_euclid(60));
                    if clock != Some(reading) {
                        if let Some(old) = clock.replace(reading) {
                            inputs.clock.remove(old);
                        }
                        inputs.clock.insert(reading);
                        received = true;
                    }
                }
                let pushed_since = worker_last_push.load(Ordering::Acquire) >= inputs.time();
                if received || pushed_since || closed || now >= inputs.time() + IDLE_ADVANCE_MS {
                    inputs.advance_to(now);
                }
                if closed {
                    break;
                }
                worker.step_or_park(Some(IDLE_PARK));
            }
        })
        .map_err(PipelineError)?;
        let runner = std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || drop(guards.join()))
            .map_err(|e| PipelineError(e.to_string()))?;
        Ok(Pipeline {
            inputs: senders,
            next_worker: AtomicUsize::new(0),
            last_push,
            queued,
            rows,
            process,
            processes,
            replayed,
            runner: Mutex::new(Some(runner)),
        })
    }

    /// Hands one accepted batch to a worker: its rows, or on a process of
    /// a cluster other than 0, the batch itself for process 0.
    pub fn push(&self, envelope: Envelope) {
        if self.process == 0 {
            if let Some(rows) = self.rows.rows(envelope) {
                self.hand_over(Handed::Rows(rows));
            }
        } else {
            self.hand_over(Handed::Forwarded((self.process as u32, envelope.encode())));
        }
    }

    /// Marks this process's replay as handed over. On process 0 of a
    /// cluster, [`Pipeline::cluster_replayed`] tells when every other
    /// process's mark has reached it.
    pub fn replay_handed_over(&self) {
        if self.process != 0 {
            self.hand_over(Handed::Forwarded((self.process as u32, Vec::new())));
        }
    }

    /// On process 0: whether every process's replay has reached the
    /// dataflow (alone: always). Once it has and the views have caught up,
    /// they hold everything archived before the start.
    pub fn cluster_replayed(&self) -> bool {
        self.replayed.load(Ordering::Acquire) + 1 >= self.processes
    }

    fn hand_over(&self, handed: Handed) {
        let worker = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.inputs.len();
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.inputs[worker].send(handed).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("pipeline worker has stopped; batch not applied to views");
            return;
        }
        self.last_push.fetch_max(now_ms(), Ordering::AcqRel);
    }

    /// Adds (+1) or removes (−1) alert rules in the dataflow. A rule's
    /// window (`ViewStore::rule_window`) fills at once from the signals
    /// already received within it. A project's events are signals once it
    /// has a rule; its first rule's windows are filled from the views'
    /// minute cells (each counted at its minute's start).
    pub fn update_rules(&self, changes: Vec<(RuleSpec, isize)>) {
        if changes.is_empty() {
            return;
        }
        let mut backfill = Vec::new();
        {
            let mut alerted = self.rows.alerted.write().unwrap_or_else(|e| e.into_inner());
            for (rule, _) in changes.iter().filter(|(_, diff)| *diff > 0) {
                // A project's first rule: its windows start from what the
                // views hold of the longest window, by minute. Its events
                // stay signals from then on (until a restart), even without
                // rules, so a later first rule is never filled twice.
                if alerted.insert(rule.project) {
                    let since = now_ms() as i64 - MAX_WINDOW_S * 1000;
                    backfill.extend(self.rows.views.signals_since(rule.project, since));
                }
            }
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.inputs[0].send(Handed::Rows(Rows { rules: changes, backfill, ..Rows::default() })).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("pipeline worker has stopped; alert rules not updated");
            return;
        }
        self.last_push.fetch_max(now_ms(), Ordering::AcqRel);
    }

    /// Forgets a deleted project: its batches are no longer handed over
    /// (nor replayed, when this is called before the replay at start) and
    /// the views drop it.
    pub fn forget_project(&self, project_id: &str) {
        self.rows.deleted.write().unwrap_or_else(|e| e.into_inner()).insert(project_id.to_owned());
        self.rows.views.forget_project(project_id);
    }

    /// Whether every batch handed over so far is reflected in the views.
    pub fn caught_up(&self) -> bool {
        self.rows.views.applied_through() > self.last_push.load(Ordering::Acquire)
    }

    /// Batches handed over that no worker has taken yet.
    pub fn queued_batches(&self) -> i64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn views(&self) -> &Arc<ViewStore> {
        &self.rows.views
    }

    /// Stops the workers after they took what was handed over.
    pub fn shutdown(mut self) {
        self.inputs.clear();
        if let Some(runner) = self.runner.lock().ok().and_then(|mut r| r.take()) {
            let _ = runner.join();
        }
    }
}

impl RowMaker {
    /// A batch's rows (none for a deleted project's); its error events
    /// are noted as their groups' samples.
    pub(crate) fn rows(&self, envelope: Envelope) -> Option<Rows> {
        if self.deleted.read().unwrap_or_else(|e| e.into_inner()).contains(&envelope.project_id) {
            return None;
        }
        let mut names = self.views.names().batch();
        let project = names.intern(&envelope.project_id);
        let alerted = self.alerted.read().unwrap_or_else(|e| e.into_inner()).contains(&project);
        let events = envelope.events;
        let mut rows = Rows::with_room_for(&events);
        // Error events, by index: moved (not copied) to the views under one
        // lock once the rows are made, which keep each group's newest few
        // as its samples.
        let mut samples: Vec<(Symbol, Symbol, usize)> = Vec::new();
        let mut previous: Option<(&Event, EventSymbols)> = None;
        for (index, event) in events.iter().enumerate() {
            let symbols = EventSymbols::of(event, previous, &mut names);
            previous = Some((event, symbols));
            let pageview = pageview_row(event, &symbols, &mut names);
            rows.sessions.extend(session_hit(event, &symbols, pageview.as_ref()));
            // What the project's alert rules watch: when it was received,
            // and where.
            let received_s = event.received_at.div_euclid(1000);
            let mut signal = |signal, path, release, device| {
                if alerted {
                    rows.signals.push(SignalRow { project, received_s, signal, path, release, device });
                }
            };
            if let Some(row) = pageview {
                signal(Signal::Pageview, row.path, row.dims.release, row.dims.device);
                rows.pageviews.push(row);
            } else if let Some(row) = error_row(event, &symbols, &mut names) {
                signal(Signal::Error, row.path, row.release, row.device);
                rows.errors.push(row);
                samples.push((row.project, row.group, index));
            } else if let Some(row) = vital_row(event, &symbols) {
                signal(
                    Signal::Vital { metric: row.metric, value: quantize(row.value) },
                    row.path,
                    row.release,
                    row.device,
                );
                rows.vitals.push(row);
            } else if let Some(row) = event_row(event, &symbols, &mut names, self.views.prop_sets()) {
                rows.events.push(row);
            }
        }
        // Let the names' read lock go before the views' lock is taken: a
        // reader of names holding a view's lock, queued behind a new name's
        // writer, would otherwise wait on this batch and it on them.
        drop(names);
        // Only each group's newest few of the batch can be kept: the others
        // are dropped here, outside the views' lock.
        samples.sort_unstable_by(|(p, g, a), (q, h, b)| {
            let newest = |i: &usize| (events[*i].ts, events[*i].received_at);
            (p, g).cmp(&(q, h)).then(newest(b).cmp(&newest(a)))
        });
        let mut kept = 0;
        let mut current = None;
        samples.retain(|(p, g, _)| {
            if current != Some((*p, *g)) {
                (current, kept) = (Some((*p, *g)), 0);
            }
            kept += 1;
            kept <= LATEST_EVENTS
        });
        // Moved out from the back, so each index still names its event.
        samples.sort_unstable_by_key(|(_, _, index)| std::cmp::Reverse(*index));
        let mut events = events;
        let samples = samples.into_iter().map(|(p, g, index)| (p, g, events.swap_remove(index))).collect();
        self.views.note_error_samples(samples);
        (!rows.is_empty()).then_some(rows)
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::{DeviceClass, Event, EventKind};
    use sightline_operators::Interval;

    use super::*;
    use crate::views::{PageviewsQuery, RuleWindow};
    use sightline_operators::Watch;

    /// Waits until the views reflect every batch handed over.
    fn wait_caught_up(pipeline: &Pipeline, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while !pipeline.caught_up() {
            assert!(std::time::Instant::now() < deadline, "views did not catch up");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn pageview(project: &str, ts: i64, path: &str, visitor: &str) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            project_id: project.into(),
            received_at: ts,
            ts,
            client_ts: None,
            anonymous_id: visitor.into(),
            session_id: None,
            url: None,
            path: path.into(),
            release: None,
            device: DeviceClass::Desktop,
            browser: "Firefox".into(),
            os: "Linux".into(),
            kind: EventKind::Pageview { referrer: None, title: None },
        }
    }

    #[test]
    fn batches_reach_the_views_on_every_worker_count() {
        for workers in [1, 2, 4] {
            let views = Arc::new(ViewStore::default());
            let pipeline = Pipeline::start(PipelineConfig { workers }, views.clone()).unwrap();
            let now = now_ms() as i64;
            for i in 0..40 {
                let events = (0..25)
                    .map(|j| pageview("p", now - 1000, &format!("/{}", j % 3), &format!("v{}", (i * 25 + j) % 7)))
                    .collect();
                pipeline.push(Envelope {
                    batch_id: uuid::Uuid::now_v7(),
                    project_id: "p".into(),
                    received_at: now,
                    events,
                });
            }
            wait_caught_up(&pipeline, Duration::from_secs(10));
            let answer = views.pageviews(&PageviewsQuery {
                project_id: "p".into(),
                interval: Interval::Day,
                from: now - 86_400_000,
                to: now + 1,
                filters: Default::default(),
            });
            assert_eq!((answer.total.pageviews, answer.total.visitors), (1000, 7), "{workers} workers");
            pipeline.shutdown();
        }
    }

    #[test]
    fn alert_rules_see_the_signals_of_their_window_including_those_before_them() {
        let views = Arc::new(ViewStore::default());
        let pipeline = Pipeline::start(PipelineConfig { workers: 2 }, views.clone()).unwrap();
        let names = views.names();
        let rule = |id: &str, watch, path: Option<&str>, window_s| RuleSpec {
            rule: names.intern(id),
            project: names.intern("p"),
            watch,
            path: path.map(|p| names.intern(p)),
            release: None,
            device: None,
            window_s,
        };
        // The project's first rule: from now on its events are signals.
        let all = rule("all", Watch::Pageviews, None, 300);
        pipeline.update_rules(vec![(all, 1)]);
        let now = now_ms() as i64;
        let mut events: Vec<Event> =
            (0..4).map(|i| pageview("p", now, if i < 3 { "/cart" } else { "/" }, "v")).collect();
        let mut lcp = pageview("p", now, "/cart", "v");
        lcp.kind = EventKind::Vital { name: sightline_model::VitalName::Lcp, value: 2400.0 };
        events.push(lcp);
        let mut old = pageview("p", now, "/cart", "v");
        old.received_at = now - 120_000;
        events.push(old);
        pipeline.push(Envelope { batch_id: uuid::Uuid::now_v7(), project_id: "p".into(), received_at: now, events });
        wait_caught_up(&pipeline, Duration::from_secs(10));
        // Rules made after the events see them at once.
        let cart = rule("cart", Watch::Pageviews, Some("/cart"), 60);
        let short = rule("short", Watch::Pageviews, None, 2);
        let vital = rule("lcp", Watch::Vital(sightline_model::VitalName::Lcp), None, 60);
        pipeline.update_rules(vec![(cart, 1), (short, 1), (vital, 1)]);
        wait_caught_up(&pipeline, Duration::from_secs(10));
        assert_eq!(views.rule_window("cart").pageviews, 3, "the path filter, and the 2-minute-old one is out");
        assert_eq!(views.rule_window("all").pageviews, 5, "the old one is within 5 minutes");
        assert_eq!(views.rule_window("short").pageviews, 4);
        let p75 = views.rule_window("lcp").vital_quantile(0.75).unwrap();
        assert!((2_390.0..=2_410.0).contains(&p75), "{p75}");
        // Time passing empties the short window without any new event.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while views.rule_window("short").pageviews != 0 {
            assert!(std::time::Instant::now() < deadline, "the 2 s window never emptied");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(views.rule_window("all").pageviews, 5);
        // Another project's first rule is filled from the views, by minute.
        let q_events: Vec<Event> = (0..3).map(|i| pageview("q", now, "/", &format!("q{i}"))).collect();
        pipeline.push(Envelope {
            batch_id: uuid::Uuid::now_v7(),
            project_id: "q".into(),
            received_at: now,
            events: q_events,
        });
        wait_caught_up(&pipeline, Duration::from_secs(10));
        let first = RuleSpec {
            rule: names.intern("q-first"),
            project: names.intern("q"),
            ..rule("x", Watch::Pageviews, None, 300)
        };
        pipeline.update_rules(vec![(first, 1)]);
        wait_caught_up(&pipeline, Duration::from_secs(10));
        assert_eq!(views.rule_window("q-first").pageviews, 3, "the views' minutes before the first rule");
        // A removed rule's window goes with it.
        pipeline.update_rules(vec![(all, -1)]);
        wait_caught_up(&pipeline, Duration::from_secs(10));
        assert_eq!(views.rule_window("all"), RuleWindow::default());
        pipeline.shutdown();
    }

    #[test]
    fn a_forgotten_project_leaves_the_views_and_stays_out() {
        let views = Arc::new(ViewStore::default());
        let pipeline = Pipeline::start(PipelineConfig { workers: 2 }, views.clone()).unwrap();
        let now = now_ms() as i64;
        let push = |project: &str, n: usize| {
            let events = (0..n).map(|i| pageview(project, now - 1000, "/", &format!("v{i}"))).collect();
            pipeline.push(Envelope {
                batch_id: uuid::Uuid::now_v7(),
                project_id: project.into(),
                received_at: now,
                events,
            });
            wait_caught_up(&pipeline, Duration::from_secs(10));
        };
        let total = |project: &str| {
            let q = PageviewsQuery {
                project_id: project.into(),
                interval: Interval::Day,
                from: now - 86_400_000,
                to: now + 1,
                filters: Default::default(),
            };
            let answer = views.pageviews(&q);
            (
                answer.total.pageviews,
                answer.total.visitors,
                views
                    .sessions_summary(&crate::views::SessionsQuery {
                        project_id: project.into(),
                        from: now - 86_400_000,
                        to: now + 1,
                        filters: Default::default(),
                    })
                    .sessions,
            )
        };
        push("gone", 5);
        push("kept", 3);
        assert_eq!(total("gone"), (5, 5, 5));
        pipeline.forget_project("gone");
        assert_eq!(total("gone"), (0, 0, 0));
        push("gone", 4);
        push("kept", 1);
        assert_eq!(total("gone"), (0, 0, 0), "nothing of it is applied again");
        assert_eq!(total("kept"), (4, 3, 3), "v0 came back");
        pipeline.shutdown();
    }

    #[test]
    fn a_group_keeps_its_ten_newest_events_newest_first() {
        use sightline_model::GroupRef;

        let views = Arc::new(ViewStore::default());
        let pipeline = Pipeline::start(PipelineConfig { workers: 1 }, views.clone()).unwrap();
        let now = now_ms() as i64;
        let error = |i: i64| Event {
            kind: EventKind::Error {
                error_type: Some("TypeError".into()),
                message: Some(format!("boom {i}")),
                stack: None,
                frames: Vec::new(),
                fingerprint: None,
                group: Some(GroupRef { fingerprint: "fp".into(), version: "v1".into(), basis: "message".into() }),
            },
            ..pageview("p", now - 100_000 + i * 1000, "/", "v")
        };
        // Two batches, the second holding older events than some of the first.
        for batch in [vec![3, 7, 11, 1, 5, 9], vec![0, 2, 4, 6, 8, 10]] {
            let events = batch.into_iter().map(error).collect();
            pipeline.push(Envelope {
                batch_id: uuid::Uuid::now_v7(),
                project_id: "p".into(),
                received_at: now,
                events,
            });
        }
        wait_caught_up(&pipeline, Duration::from_secs(10));
        let q = crate::views::ErrorsQuery {
            project_id: "p".into(),
            from: now - 3_600_000,
            to: now + 1,
            release: None,
            path: None,
            device: None,
        };
        let detail = views.error_group(&q, "fp").expect("the group");
        let messages: Vec<String> = detail.latest_events.iter().map(|e| e.message.clone().unwrap()).collect();
        let expected: Vec<String> = (2..=11).rev().map(|i| format!("boom {i}")).collect();
        assert_eq!(messages, expected);
        assert_eq!(detail.latest_event.unwrap().message.as_deref(), Some("boom 11"));
        assert_eq!(detail.summary.message.as_deref(), Some("boom 11"), "the summary shows the newest");
        pipeline.shutdown();
    }

    /// A log-normal sample: most values near `median`, a long right tail.
    fn skewed(rng: &mut impl rand::Rng, median: f64, sigma: f64) -> f64 {
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * normal).exp()
    }

    /// Nearest-rank percentile of sorted samples.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1]
    }

    #[test]
    fn vitals_percentiles_are_within_one_percent_of_exact_on_skewed_samples() {
        use rand::{Rng, SeedableRng};
        use sightline_model::VitalName;

        use crate::views::VitalsQuery;

        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let views = Arc::new(ViewStore::default());
        let pipeline = Pipeline::start(PipelineConfig { workers: 2 }, views.clone()).unwrap();
        let now = now_ms() as i64;
        // LCP in ms around 2 s with a long tail; CLS unitless, a fifth of
        // pages not shifting at all and the rest mostly well under 0.1.
        let metrics = [(VitalName::Lcp, (2_500.0, 4_000.0), 0.0), (VitalName::Cls, (0.1, 0.25), 0.2)];
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); metrics.len()];
        for batch in 0..200 {
            let mut events = Vec::new();
            for _ in 0..1_000 {
                let which = rng.random_range(0..metrics.len());
                let (name, _, zeros) = metrics[which];
                let value = if rng.random_bool(zeros) {
                    0.0
                } else if name == VitalName::Cls {
                    skewed(&mut rng, 0.03, 1.2)
                } else {
                    skewed(&mut rng, 2_000.0, 0.8)
                };
                samples[which].push(value);
                let mut event = pageview("p", now - 60_000 - batch, "/", "v");
                event.kind = EventKind::Vital { name, value };
                events.push(event);
            }
            pipeline.push(Envelope {
                batch_id: uuid::Uuid::now_v7(),
                project_id: "p".into(),
                received_at: now,
                events,
            });
        }
        wait_caught_up(&pipeline, Duration::from_secs(60));
        for ((name, (good, poor), _), mut values) in metrics.into_iter().zip(samples) {
            values.sort_by(f64::total_cmp);
            let answer = views.vitals(&VitalsQuery {
                project_id: "p".into(),
                metric: name,
                from: now - 3_600_000,
                to: now + 1,
                path: None,
                device: None,
                browser: None,
                release: None,
            });
            assert_eq!(answer.count, values.len() as i64, "{name:?}");
            for (q, got) in [(0.5, answer.p50), (0.75, answer.p75), (0.95, answer.p95), (0.99, answer.p99)] {
                let (want, got) = (exact(&values, q), got.unwrap());
                let error = if want == 0.0 { got } else { (got - want).abs() / want };
                assert!(error <= 0.01, "{name:?} p{}: {got} against exact {want}", q * 100.0);
            }
            let share = |f: &dyn Fn(f64) -> bool| values.iter().filter(|v| f(**v)).count() as f64 / values.len() as f64;
            assert!((answer.good - share(&|v| v <= good)).abs() < 1e-9, "{name:?} good");
            assert!((answer.needs_improvement - share(&|v| v > good && v <= poor)).abs() < 1e-9, "{name:?} ni");
            assert!((answer.poor - share(&|v| v > poor)).abs() < 1e-9, "{name:?} poor");
        }
        pipeline.shutdown();
    }

    #[test]
    fn views_shrink_on_their_own_as_time_passes_the_retention_window() {
        use sightline_model::{PropValue, VitalName};

        use crate::views::{EventsQuery, SessionsQuery, VitalsQuery};

        let now = now_ms() as i64;
        let mut ts = now - 120_000;
        let bucket_end = |interval: Interval, ts: i64| interval.bucket_of(ts) + interval.millis();
        // In an hour's last minute both buckets end together: use the minute
        // before, so the hour bucket always ends later.
        if bucket_end(Interval::Minute, ts) == bucket_end(Interval::Hour, ts) {
            ts -= 60_000;
        }
        // A window that ends the events' minute bucket two seconds from now;
        // their hour buckets end later and stay.
        let retention_ms = now + 2_000 - bucket_end(Interval::Minute, ts);
        let views = Arc::new(ViewStore::new(retention_ms));
        let pipeline = Pipeline::start(PipelineConfig { workers: 2 }, views.clone()).unwrap();
        let mut event = pageview("p", ts, "/", "v");
        event.kind = EventKind::Event { name: "signup".into(), props: [("plan".into(), PropValue::Bool(true))].into() };
        let mut vital = pageview("p", ts, "/", "v");
        vital.kind = EventKind::Vital { name: VitalName::Lcp, value: 1200.0 };
        // Sessions without the SDK's id (from `reduce`) and with one (folded).
        let mut sdk_session = pageview("p", ts, "/", "w");
        sdk_session.session_id = Some("s1".into());
        let events = vec![pageview("p", ts, "/", "v"), event, vital, sdk_session];
        pipeline.push(Envelope { batch_id: uuid::Uuid::now_v7(), project_id: "p".into(), received_at: now, events });
        let counts = |interval: Interval| {
            let (from, to) = (ts - 60_000, if interval == Interval::Minute { ts + 60_000 } else { ts + 7 * 3_600_000 });
            let pv = views.pageviews(&PageviewsQuery {
                project_id: "p".into(),
                interval,
                from,
                to,
                filters: Default::default(),
            });
            let ev = views.events(&EventsQuery {
                project_id: "p".into(),
                interval,
                from,
                to,
                name: None,
                filters: Default::default(),
            });
            // A short range reads minute cells, a long one hour cells.
            let vt = views.vitals(&VitalsQuery {
                project_id: "p".into(),
                metric: VitalName::Lcp,
                from,
                to,
                path: None,
                device: None,
                browser: None,
                release: None,
            });
            let sessions = views.sessions_summary(&SessionsQuery {
                project_id: "p".into(),
                from,
                to,
                filters: Default::default(),
            });
            (pv.total.pageviews, ev.total, vt.count, sessions.sessions)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while counts(Interval::Minute) != (2, 1, 1, 2) {
            assert!(std::time::Instant::now() < deadline, "views did not fill: {:?}", counts(Interval::Minute));
            std::thread::sleep(Duration::from_millis(5));
        }
        // Time passes the minute bucket's window: its cells leave every view.
        while counts(Interval::Minute) != (0, 0, 0, 0) {
            assert!(std::time::Instant::now() < deadline, "minute cells stayed: {:?}", counts(Interval::Minute));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(now_ms() as i64 >= now + 2_000, "nothing left before its time");
        assert_eq!(counts(Interval::Hour), (2, 1, 1, 2), "hour buckets end later");
        pipeline.shutdown();
    }

    #[test]
    fn a_groups_sample_is_its_newest_event_whatever_the_arrival_order() {
        use sightline_model::GroupRef;

        use crate::views::ErrorsQuery;

        let views = Arc::new(ViewStore::default());
        let pipeline = Pipeline::start(PipelineConfig { workers: 2 }, views.clone()).unwrap();
        let now = now_ms() as i64;
        let error = |visitor: &str, ago: i64| {
            let mut e = pageview("p", now - ago, "/", visitor);
            e.kind = EventKind::Error {
                error_type: Some("TypeError".into()),
                message: Some("x".into()),
                stack: None,
                frames: Vec::new(),
                fingerprint: None,
                group: Some(GroupRef { fingerprint: "g".into(), version: "v1".into(), basis: "message".into() }),
            };
            e
        };
        let envelope =
            |events| Envelope { batch_id: uuid::Uuid::now_v7(), project_id: "p".into(), received_at: now, events };
        pipeline.push(envelope(vec![error("older", 3_000), error("newest", 1_000), error("old", 2_000)]));
        pipeline.push(envelope(vec![error("late", 5_000)]));
        wait_caught_up(&pipeline, Duration::from_secs(10));
        let q = ErrorsQuery {
            project_id: "p".into(),
            from: now - 60_000,
            to: now + 1,
            release: None,
            path: None,
            device: None,
        };
        let detail = views.error_group(&q, "g").unwrap();
        assert_eq!(detail.summary.count, 4);
        assert_eq!(detail.latest_event.unwrap().anonymous_id, "newest");
        pipeline.shutdown();
    }
}
