//! The view feed of a cluster: process 0 of the worker processes turns
//! every tick it applies into [`FeedChunk`]s ([`FeedWriter`]); an API node
//! applies them, in order, to views of its own ([`Replica`]).
//!
//! A tick carries the names made since the last one (the symbols are
//! process 0's: a replica's interner makes the same ones in the same
//! order), the error samples noted since, and the tick's consolidated
//! updates. Each start of process 0 is a new *generation*, rebuilt from the
//! archive; a replica keeps serving the generation it has until the new
//! one's feed says it has replayed everything (`ready`), then swaps.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_model::Event;
use sightline_operators::{Symbol, Time};

use crate::runtime::TickHook;
use crate::views::{ViewStore, ViewUpdate};

/// One message of the feed: a whole tick, or a part of one (`last` marks
/// its end), kept under NATS's default 1 MB payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct FeedChunk {
    /// Process 0's start (ms): which build of the views this belongs to.
    pub generation: u64,
    /// This chunk's place in its generation's feed, from 0.
    pub index: u64,
    /// The tick: every update before it is in this or an earlier chunk.
    pub through: Time,
    /// The generation holds everything archived before it started.
    pub ready: bool,
    /// The symbol of `names[0]`.
    pub names_from: u64,
    pub names: Vec<String>,
    pub samples: Vec<(Symbol, Symbol, Event)>,
    pub updates: Vec<(ViewUpdate, isize)>,
    /// The last chunk of its tick.
    pub last: bool,
}

/// Per chunk at most this many updates (about 60 bytes each encoded),
/// names, and error samples (each a whole event with its stack).
const UPDATES_PER_CHUNK: usize = 8_192;
const NAMES_PER_CHUNK: usize = 4_096;
const SAMPLES_PER_CHUNK: usize = 32;
/// An idle generation still sends a tick this often: the replicas' sign
/// that process 0 is alive, and how they know how fresh their views are.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Makes process 0's feed from the ticks its view applier applies.
pub struct FeedWriter {
    views: Arc<ViewStore>,
    generation: u64,
    next_index: u64,
    names_sent: usize,
    ready: Arc<AtomicBool>,
    ready_sent: bool,
    last_sent: Option<Instant>,
    send: Box<dyn FnMut(Vec<u8>) + Send>,
}

impl FeedWriter {
    /// A feed of `views` for generation `generation`, handing each encoded
    /// chunk to `send` (in order; it may block, which holds back the view
    /// applier). Set `ready` once the views hold the whole replay.
    pub fn new(
        views: Arc<ViewStore>,
        generation: u64,
        ready: Arc<AtomicBool>,
        send: Box<dyn FnMut(Vec<u8>) + Send>,
    ) -> FeedWriter {
        views.tap_samples();
        FeedWriter { views, generation, next_index: 0, names_sent: 0, ready, ready_sent: false, last_sent: None, send }
    }

    /// The hook for the view applier.
    pub fn into_hook(mut self) -> TickHook {
        Box::new(move |through, updates| self.tick(through, updates))
    }

    fn tick(&mut self, through: Time, updates: &[(ViewUpdate, isize)]) {
        let ready = self.ready.load(Ordering::Acquire);
        let names = self.views.names().since(self.names_sent);
        let samples = self.views.take_tapped_samples();
        let quiet = updates.is_empty() && names.is_empty() && samples.is_empty() && ready == self.ready_sent;
        if quiet && self.last_sent.is_some_and(|at| at.elapsed() < HEARTBEAT) {
            return;
        }
        let names_from = self.names_sent as u64;
        self.names_sent += names.len();
        let (mut names, mut samples, mut updates) = (names.as_slice(), samples, updates);
        let mut sent_names = 0;
        loop {
            let (these_names, rest) = names.split_at(names.len().min(NAMES_PER_CHUNK));
            names = rest;
            let these_samples: Vec<_> = samples.drain(..samples.len().min(SAMPLES_PER_CHUNK)).collect();
            let (these_updates, rest) = updates.split_at(updates.len().min(UPDATES_PER_CHUNK));
            updates = rest;
            let last = names.is_empty() && samples.is_empty() && updates.is_empty();
            let chunk = FeedChunk {
                generation: self.generation,
                index: self.next_index,
                through,
                ready,
                names_from: names_from + sent_names as u64,
                names: these_names.iter().map(|n| n.to_string()).collect(),
                samples: these_samples,
                updates: these_updates.to_vec(),
                last,
            };
            sent_names += these_names.len();
            self.next_index += 1;
            (self.send)(rmp_serde::to_vec(&chunk).expect("a feed chunk always serializes"));
            if last {
                break;
            }
        }
        self.ready_sent = ready;
        self.last_sent = Some(Instant::now());
    }
}

/// Why a replica could not take a chunk: it must follow the feed again
/// from the start of what the stream holds.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("a view feed message does not decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("the view feed of generation {generation} skipped from chunk {expected} to {got}")]
    Gap { generation: u64, expected: u64, got: u64 },
    #[error("the view feed's names went out of step at symbol {0}")]
    Names(u64),
}

/// An API node's views, fed by process 0's feed.
pub struct Replica {
    serving: RwLock<Arc<ViewStore>>,
    follow: Mutex<Follow>,
    retention_ms: i64,
    /// Deleted projects, dropped from every generation's views.
    forgotten: Mutex<HashSet<String>>,
    ready: AtomicBool,
}

#[derive(Default)]
struct Follow {
    /// The generation served, if any.
    serving: Option<u64>,
    /// A newer generation being built while the older one is served.
    building: Option<(u64, Arc<ViewStore>)>,
    /// The next chunk expected, per generation followed (serving, building).
    next: Vec<(u64, u64)>,
    /// A tick's chunks so far.
    pending: Option<FeedChunk>,
}

impl Replica {
    pub fn new(retention_ms: i64) -> Replica {
        Replica {
            serving: RwLock::new(Arc::new(ViewStore::new(retention_ms))),
            follow: Mutex::default(),
            retention_ms,
            forgotten: Mutex::default(),
            ready: AtomicBool::new(false),
        }
    }

    /// The views to answer from now.
    pub fn views(&self) -> Arc<ViewStore> {
        self.serving.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the served views are of a generation that has replayed
    /// everything archived before it started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The generation served.
    pub fn generation(&self) -> Option<u64> {
        self.follow.lock().unwrap_or_else(|e| e.into_inner()).serving
    }

    /// Drops a deleted project from the views, now and in later generations.
    pub fn forget_project(&self, project_id: &str) {
        self.forgotten.lock().unwrap_or_else(|e| e.into_inner()).insert(project_id.to_owned());
        self.views().forget_project(project_id);
        if let Some((_, building)) = &self.follow.lock().unwrap_or_else(|e| e.into_inner()).building {
            building.forget_project(project_id);
        }
    }

    /// Forgets where the feed was: call before following it again from
    /// the start of the stream. What is served stays until a generation
    /// is ready again.
    pub fn restart_following(&self) {
        let mut follow = self.follow.lock().unwrap_or_else(|e| e.into_inner());
        follow.building = None;
        follow.next.clear();
        follow.pending = None;
        // The served generation, seen again from its first chunk, is
        // rebuilt beside what is served.
    }

    /// Takes the next message of the feed.
    pub fn receive(&self, bytes: &[u8]) -> Result<(), FeedError> {
        let chunk: FeedChunk = rmp_serde::from_slice(bytes)?;
        tracing::debug!(generation = chunk.generation, index = chunk.index, last = chunk.last, "view feed chunk");
        let mut follow = self.follow.lock().unwrap_or_else(|e| e.into_inner());
        let generation = chunk.generation;
        let expected = follow.next.iter().find(|(g, _)| *g == generation).map(|(_, next)| *next);
        match expected {
            Some(next) if next != chunk.index => {
                return Err(FeedError::Gap { generation, expected: next, got: chunk.index });
            }
            Some(_) => {}
            None => {
                // A generation not seen before: it is built from its first chunk.
                if chunk.index != 0 {
                    return Err(FeedError::Gap { generation, expected: 0, got: chunk.index });
                }
                let views = Arc::new(ViewStore::new(self.retention_ms));
                let serving = follow.serving;
                follow.next.retain(|(g, _)| Some(*g) == serving);
                follow.next.push((generation, 0));
                follow.pending = None;
                if follow.serving.is_none() {
                    // Nothing served yet: serve it as it fills.
                    follow.serving = Some(generation);
                    *self.serving.write().unwrap_or_else(|e| e.into_inner()) = views;
                } else {
                    follow.building = Some((generation, views));
                }
            }
        }
        if let Some(next) = follow.next.iter_mut().find(|(g, _)| *g == generation) {
            next.1 += 1;
        }
        let tick = match follow.pending.take() {
            Some(mut pending) if pending.generation == generation => {
                pending.names.extend(chunk.names);
                pending.samples.extend(chunk.samples);
                pending.updates.extend(chunk.updates);
                (pending.last, pending.ready, pending.through) = (chunk.last, chunk.ready, chunk.through);
                pending
            }
            _ => chunk,
        };
        if !tick.last {
            follow.pending = Some(tick);
            return Ok(());
        }
        let views = match &follow.building {
            Some((g, views)) if *g == generation => views.clone(),
            _ => self.views(),
        };
        apply_tick(&views, tick.names_from, &tick.names, tick.samples, tick.through, &tick.updates)?;
        if tick.ready {
            let swap = matches!(&follow.building, Some((g, _)) if *g == generation);
            if swap {
                let (generation, views) = follow.building.take().expect("the generation built");
                for project in self.forgotten.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    views.forget_project(project);
                }
                follow.serving = Some(generation);
                follow.next.retain(|(g, _)| *g == generation);
                *self.serving.write().unwrap_or_else(|e| e.into_inner()) = views;
                tracing::info!(generation, "serving the views of a new generation of the workers");
            }
            self.ready.store(true, Ordering::Release);
        }
        Ok(())
    }
}

fn apply_tick(
    views: &ViewStore,
    names_from: u64,
    names: &[String],
    samples: Vec<(Symbol, Symbol, Event)>,
    through: Time,
    updates: &[(ViewUpdate, isize)],
) -> Result<(), FeedError> {
    if names_from != views.names().len() as u64 {
        return Err(FeedError::Names(names_from));
    }
    for (offset, name) in names.iter().enumerate() {
        let symbol = names_from + offset as u64;
        if u64::from(views.names().intern(name)) != symbol {
            return Err(FeedError::Names(symbol));
        }
    }
    // Property sets are named by their canonical text, their keys and
    // values by names of their own (which may come after the set's).
    for (offset, name) in names.iter().enumerate() {
        if name.starts_with("props") {
            let set = Symbol::try_from(names_from + offset as u64).map_err(|_| FeedError::Names(names_from))?;
            let _ = views.prop_sets().register(views.names(), set, name);
        }
    }
    views.note_error_samples(samples);
    views.apply(through, updates);
    Ok(())
}

#[cfg(test)]
mod tests {
    use sightline_operators::{EventDims, EventRow, Interval, PageDims, PageviewRow};

    use super::*;
    use crate::views::{EventsQuery, PageviewsQuery};

    /// The chunks a feed sent, encoded.
    type Sent = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A feed of `views` as generation `generation`, what it sent, and its
    /// ready flag.
    fn feed_of(views: &Arc<ViewStore>, generation: u64) -> (FeedWriter, Sent, Arc<AtomicBool>) {
        let sent: Sent = Arc::default();
        let ready = Arc::new(AtomicBool::new(false));
        let sink = sent.clone();
        let send = Box::new(move |bytes| sink.lock().unwrap().push(bytes));
        (FeedWriter::new(views.clone(), generation, ready.clone(), send), sent, ready)
    }

    /// `n` page views of project `p` at `ts`, over ten paths and a hundred visitors.
    fn pageviews(views: &ViewStore, ts: i64, n: u64) -> Vec<(ViewUpdate, isize)> {
        let names = views.names();
        (0..n)
            .map(|i| {
                let dims = PageDims { browser: names.intern("Firefox"), ..PageDims::default() };
                let path = names.intern(&format!("/p{}", i % 10));
                // Visitors are hashes of their ids, as ingest makes them.
                let visitor = xxhash_rust::xxh3::xxh3_64(&(i % 100).to_le_bytes());
                let row = PageviewRow { project: names.intern("p"), ts: ts + i as i64, path, visitor, dims };
                (ViewUpdate::Pageview(row), 1)
            })
            .collect()
    }

    /// Sign-ups at `ts`, with a `plan` property: a property set per plan.
    fn signups(views: &ViewStore, ts: i64, plans: &[&str]) -> Vec<(ViewUpdate, isize)> {
        let names = views.names();
        plans
            .iter()
            .map(|plan| {
                let props = [("plan".to_string(), sightline_model::PropValue::Str(plan.to_string()))].into();
                let dims = EventDims {
                    path: names.intern("/"),
                    device: names.intern("desktop"),
                    browser: names.intern("Firefox"),
                    release: names.intern(""),
                    props: views.prop_sets().intern(&mut names.batch(), &props),
                };
                (ViewUpdate::Event(EventRow { project: names.intern("p"), ts, name: names.intern("signup"), dims }), 1)
            })
            .collect()
    }

    /// The sign-ups' `plan` breakdown.
    fn plans(views: &ViewStore, ts: i64) -> Vec<(String, i64)> {
        let q = EventsQuery {
            project_id: "p".into(),
            interval: Interval::Hour,
            from: ts - 3_600_000,
            to: ts + 3_600_000,
            name: Some("signup".into()),
            filters: Default::default(),
        };
        let answer = views.events(&q);
        answer.breakdown.get("plan").into_iter().flatten().map(|v| (v.value.clone(), v.count)).collect()
    }

    fn total(views: &ViewStore, ts: i64) -> (i64, i64) {
        let q = PageviewsQuery {
            project_id: "p".into(),
            interval: Interval::Hour,
            from: ts - 3_600_000,
            to: ts + 3_600_000,
            filters: Default::default(),
        };
        let answer = views.pageviews(&q);
        (answer.total.pageviews, answer.total.visitors)
    }

    fn deliver(replica: &Replica, sent: &Mutex<Vec<Vec<u8>>>) -> Result<usize, FeedError> {
        let chunks: Vec<Vec<u8>> = sent.lock().unwrap().drain(..).collect();
        for chunk in &chunks {
            replica.receive(chunk)?;
        }
        Ok(chunks.len())
    }

    #[test]
    fn a_replica_holds_what_the_feed_s_views_hold_and_swaps_generations_only_once_ready() {
        let ts = crate::now_ms() as i64 - 60_000;
        let replica = Replica::new(crate::views::DEFAULT_RETENTION_MS);

        // Generation 1: a tick too big for one chunk, served as it fills.
        let first = Arc::new(ViewStore::default());
        let (writer, sent, ready) = feed_of(&first, 1);
        let mut hook = writer.into_hook();
        let mut tick = pageviews(&first, ts, 10_000);
        tick.extend(signups(&first, ts, &["pro", "pro", "free"]));
        first.apply(ts as u64 + 20_000, &tick);
        hook(ts as u64 + 20_000, &tick);
        assert_eq!(deliver(&replica, &sent).unwrap(), 2, "8,192 updates a chunk");
        assert_eq!(total(&replica.views(), ts), total(&first, ts));
        assert_eq!(total(&replica.views(), ts), (10_000, 100));
        // Names and property sets come with the feed.
        assert_eq!(plans(&replica.views(), ts), plans(&first, ts));
        assert_eq!(plans(&replica.views(), ts), vec![("pro".to_string(), 2), ("free".to_string(), 1)]);
        assert!(!replica.is_ready(), "not before the feed says the replay is done");
        ready.store(true, Ordering::Release);
        hook(ts as u64 + 40_000, &[]);
        deliver(&replica, &sent).unwrap();
        assert!(replica.is_ready());
        assert_eq!(replica.generation(), Some(1));

        // Generation 2 (the workers restarted): built beside, swapped once ready.
        let second = Arc::new(ViewStore::default());
        let (writer, sent, ready) = feed_of(&second, 2);
        let mut hook = writer.into_hook();
        let tick = pageviews(&second, ts, 3);
        second.apply(ts as u64 + 50_000, &tick);
        hook(ts as u64 + 50_000, &tick);
        deliver(&replica, &sent).unwrap();
        assert_eq!(total(&replica.views(), ts), (10_000, 100), "the ready generation is still served");
        ready.store(true, Ordering::Release);
        hook(ts as u64 + 60_000, &[]);
        deliver(&replica, &sent).unwrap();
        assert_eq!((replica.generation(), total(&replica.views(), ts)), (Some(2), (3, 3)));

        // A chunk missing from the feed: the replica must follow it again.
        hook(ts as u64 + 70_000, &pageviews(&second, ts, 1));
        hook(ts as u64 + 80_000, &pageviews(&second, ts, 1));
        let chunks: Vec<Vec<u8>> = sent.lock().unwrap().drain(..).collect();
        assert!(matches!(replica.receive(&chunks[1]), Err(FeedError::Gap { generation: 2, .. })));
    }
}
