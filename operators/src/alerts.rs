//! Alert rules as a collection inside the dataflow: joined with the signals
//! they watch (errors, page views, vital measurements), each rule keeps
//! exactly the signals of its trailing window. A new rule is joined with the
//! window's past signals at once; a signal leaves the rule's window when the
//! ingestion clock passes its receipt plus the window.
//!
//! Windows are in received time (the server's clock at ingest, kept in the
//! data), so a restart that replays the archive rebuilds the same windows.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use sightline_model::VitalName;

use crate::retention::expire_at;
use crate::{Symbol, Time};

/// The longest window a rule may have, in seconds; signals are kept this
/// long and no longer.
pub const MAX_WINDOW_S: i64 = 86_400;

/// What one event tells the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Signal {
    Error,
    Pageview,
    /// A vital measurement, quantized as the vitals view quantizes it.
    Vital {
        metric: VitalName,
        value: u64,
    },
    /// An error group's first event (at its event time; no dimensions).
    NewGroup,
}

/// One signal of an event, with the dimensions rules filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SignalRow {
    pub project: Symbol,
    /// The second the server received the event.
    pub received_s: i64,
    pub signal: Signal,
    pub path: Symbol,
    pub release: Symbol,
    pub device: Symbol,
}

/// Which signals a rule's value is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Watch {
    Errors,
    Pageviews,
    /// Both, for an error rate.
    ErrorsAndPageviews,
    Vital(VitalName),
    /// Error groups first seen.
    NewGroups,
}

/// A rule as the dataflow sees it: what it watches, where, over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleSpec {
    pub rule: Symbol,
    pub project: Symbol,
    pub watch: Watch,
    pub path: Option<Symbol>,
    pub release: Option<Symbol>,
    pub device: Option<Symbol>,
    /// 1 to [`MAX_WINDOW_S`].
    pub window_s: i64,
}

impl RuleSpec {
    /// Whether a signal of the rule's project counts for the rule.
    pub fn counts(&self, s: &SignalRow) -> bool {
        let watched = match (self.watch, s.signal) {
            (Watch::Errors, Signal::Error) | (Watch::Pageviews, Signal::Pageview) => true,
            (Watch::ErrorsAndPageviews, Signal::Error | Signal::Pageview) => true,
            (Watch::Vital(want), Signal::Vital { metric, .. }) => want == metric,
            (Watch::NewGroups, Signal::NewGroup) => true,
            _ => false,
        };
        watched
            && self.path.is_none_or(|p| p == s.path)
            && self.release.is_none_or(|r| r == s.release)
            && self.device.is_none_or(|d| d == s.device)
    }
}

/// One signal in a rule's window; the diff is how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleSample {
    pub project: Symbol,
    pub rule: Symbol,
    pub signal: Signal,
}

/// An error group's first sighting as a signal, from the error views' `Seen`
/// updates (which move with the group's last event; the first stays, so
/// those moves cancel).
pub fn new_group_signal(update: &crate::ErrorUpdate) -> Option<SignalRow> {
    match update {
        crate::ErrorUpdate::Seen { project, first, .. } => Some(SignalRow {
            project: *project,
            received_s: first.div_euclid(1000),
            signal: Signal::NewGroup,
            path: 0,
            release: 0,
            device: 0,
        }),
        _ => None,
    }
}

/// When a signal received in second `received_s` leaves a window of
/// `window_s` seconds: windows count whole seconds, rounding up, so a signal
/// received late in a second is never out of a one-second window on arrival.
fn window_end(received_s: i64, window_s: i64) -> i64 {
    (received_s + window_s + 1) * 1000
}

/// The signals in each rule's trailing window. A rule's value (a count, a
/// rate, a percentile) is read from its samples by the read model.
pub fn rule_windows<'s>(
    signals: VecCollection<'s, Time, SignalRow>,
    rules: VecCollection<'s, Time, RuleSpec>,
) -> VecCollection<'s, Time, RuleSample> {
    let signals = expire_at(signals, |s| window_end(s.received_s, MAX_WINDOW_S));
    let matched =
        signals.map(|s| (s.project, s)).join_map(rules.map(|r| (r.project, r)), |_, s: &SignalRow, r: &RuleSpec| {
            (
                RuleSample { project: r.project, rule: r.rule, signal: s.signal },
                window_end(s.received_s, r.window_s),
                r.counts(s),
            )
        });
    let matched = matched.filter(|(_, _, counts)| *counts).map(|(sample, ends, _)| (sample, ends));
    expire_at(matched, |(_, ends)| *ends).map(|(sample, _)| sample)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use std::sync::{Arc, Mutex};

    use differential_dataflow::input::InputSession;
    use timely::dataflow::operators::{Inspect, Probe};

    use super::*;

    fn signal(project: Symbol, received_s: i64, signal: Signal, path: Symbol) -> SignalRow {
        SignalRow { project, received_s, signal, path, release: 0, device: 0 }
    }

    fn rule(rule: Symbol, project: Symbol, watch: Watch, path: Option<Symbol>, window_s: i64) -> RuleSpec {
        RuleSpec { rule, project, watch, path, release: None, device: None, window_s }
    }

    /// The plain reference: at tick `now`, the signals counting for each rule
    /// that is defined then, received within its window.
    fn reference(
        signals: &[(SignalRow, Time)],
        rules: &[(RuleSpec, Time, Option<Time>)],
        now: Time,
    ) -> BTreeMap<RuleSample, isize> {
        let mut out = BTreeMap::new();
        for (r, from, until) in rules {
            if *from > now || until.is_some_and(|u| u <= now) {
                continue;
            }
            for (s, at) in signals {
                let ends = ((s.received_s + r.window_s + 1) * 1000) as Time;
                if s.project == r.project && r.counts(s) && *at <= now && ends > now {
                    *out.entry(RuleSample { project: r.project, rule: r.rule, signal: s.signal }).or_insert(0) += 1;
                }
            }
        }
        out
    }

    #[test]
    fn each_rule_holds_exactly_the_signals_of_its_window_as_time_passes() {
        // Signals arrive at their receipt; two rules watch project 1 with
        // different windows and filters, one is added late and one removed.
        let signals: Vec<(SignalRow, Time)> = vec![
            (signal(1, 10, Signal::Error, 5), 10_000),
            (signal(1, 11, Signal::Error, 6), 11_000),
            (signal(1, 11, Signal::Pageview, 5), 11_000),
            (signal(2, 12, Signal::Error, 5), 12_000),
            (signal(1, 20, Signal::Error, 5), 20_000),
            (signal(1, 21, Signal::Vital { metric: VitalName::Lcp, value: 2500 }, 5), 21_000),
        ];
        let rules: Vec<(RuleSpec, Time, Option<Time>)> = vec![
            (rule(100, 1, Watch::Errors, None, 5), 0, None),
            (rule(101, 1, Watch::ErrorsAndPageviews, Some(5), 30), 15_000, Some(40_000)),
            (rule(102, 1, Watch::Vital(VitalName::Lcp), None, 60), 0, None),
        ];
        let ticks: Vec<Time> = (0..=70).map(|s| s * 1000).collect();
        for workers in [1, 2] {
            let updates = run(workers, &signals, &rules, &ticks);
            for &now in &ticks {
                let mut state: BTreeMap<RuleSample, isize> = BTreeMap::new();
                for (sample, time, diff) in &updates {
                    if *time <= now {
                        *state.entry(*sample).or_insert(0) += diff;
                    }
                }
                state.retain(|_, n| *n != 0);
                assert_eq!(state, reference(&signals, &rules, now), "at {now} ms on {workers} workers");
            }
        }
    }

    /// Every output update of `rule_windows` over the ticks: signals enter at
    /// their tick spread over the workers, rules on worker 0 only (as the
    /// pipeline feeds them).
    fn run(
        workers: usize,
        signals: &[(SignalRow, Time)],
        rules: &[(RuleSpec, Time, Option<Time>)],
        ticks: &[Time],
    ) -> Vec<(RuleSample, Time, isize)> {
        let out: Arc<Mutex<Vec<(RuleSample, Time, isize)>>> = Arc::default();
        let (signals, rules, ticks, sink) = (signals.to_vec(), rules.to_vec(), ticks.to_vec(), out.clone());
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut signal_input = InputSession::new();
            let mut rule_input = InputSession::new();
            let sink = sink.clone();
            let probe = worker.dataflow::<Time, _, _>(|scope| {
                rule_windows(signal_input.to_collection(scope), rule_input.to_collection(scope))
                    .inner
                    .inspect(move |update| sink.lock().unwrap().push(*update))
                    .probe()
                    .0
            });
            for &tick in &ticks {
                signal_input.advance_to(tick);
                rule_input.advance_to(tick);
                for (i, (s, at)) in signals.iter().enumerate() {
                    if *at == tick && i % worker.peers() == worker.index() {
                        signal_input.insert(*s);
                    }
                }
                for (r, from, until) in rules.iter().filter(|_| worker.index() == 0) {
                    if *from == tick {
                        rule_input.insert(*r);
                    }
                    if *until == Some(tick) {
                        rule_input.remove(*r);
                    }
                }
                signal_input.advance_to(tick + 1);
                rule_input.advance_to(tick + 1);
                signal_input.flush();
                rule_input.flush();
                while probe.less_than(signal_input.time()) {
                    worker.step();
                }
            }
        })
        .unwrap();
        Arc::try_unwrap(out).unwrap().into_inner().unwrap()
    }
}
