//! Anomaly scores per project series (page views per hour, errors per page
//! view per hour, each vital's p75 per hour), kept in the dataflow.
//!
//! An hour's score is robust: (value − baseline) / scale, where the scale
//! is 1.4826 × the median absolute deviation of the trailing week's hourly
//! values (with a floor, so a flat series does not divide by zero). The
//! baseline is the trailing week's median, or, once a week of history
//! exists, the median of the same hour of the week in up to four weeks
//! before (seasonal by hour of week).
//!
//! Complete hours are scored by a `reduce` per series that runs when an old
//! hour changes or the clock (an input holding the current hour and
//! minute, fed once a minute) moves to a new hour; it also leaves the
//! current hour's baseline and scale. The current hour is then scored at
//! every tick by a cheap join of its value with that baseline: counts are
//! projected to the whole hour from the minutes gone, and not scored in an
//! hour's first quarter.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use sightline_model::VitalName;

use crate::retention::expire_at;
use crate::vitals::quantize;
use crate::{Symbol, Time};

pub const HOUR_MS: i64 = 3_600_000;
const WEEK_HOURS: i64 = 168;
/// Hours of history kept: four weeks for the seasonal baseline, and the
/// week before the oldest scored hour.
pub const HISTORY_HOURS: i64 = 5 * WEEK_HOURS;
/// Complete hours scored back from the current one.
pub const SCORED_HOURS: i64 = WEEK_HOURS;
/// An hour needs this many hours of history before it to be scored.
pub const MIN_HISTORY_HOURS: i64 = 6;
/// The current hour's counts are scored from this minute on.
pub const FIRST_SCORED_MINUTE: i64 = 15;
/// Page views, errors and vital samples reach the scores at most this
/// often: each waits until the next whole second of ingestion time. An
/// hour's score needs no fresher numbers, and the per-series `reduce`
/// re-reads a week of hours whenever an old hour changes, which late events
/// do at nearly every tick: at every tick it took a seventh of the server's
/// CPU at 180k events/s (bench/README.md).
pub const SCORED_EVERY_MS: Time = 1_000;
/// MAD of a normal distribution to its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// A project's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Series {
    /// Page views per hour.
    Pageviews,
    /// Errors per page view per hour, in millionths.
    ErrorRate,
    /// A vital's p75 per hour, scaled (µs; CLS in millionths).
    VitalP75(VitalName),
}

impl Series {
    /// Whether values add up over an hour (so a partial hour is projected,
    /// and a missing hour is zero).
    fn is_count(self) -> bool {
        self == Series::Pageviews
    }

    /// The smallest scale: no score divides by less.
    fn floor(self, baseline: f64) -> f64 {
        let unit: f64 = match self {
            Series::Pageviews => 1.0,
            Series::ErrorRate => 1_000.0,    // 0.1 %
            Series::VitalP75(_) => 10_000.0, // 10 ms (CLS 0.01)
        };
        unit.max(0.05 * baseline.abs())
    }
}

/// One scored hour of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AnomalyPoint {
    pub project: Symbol,
    pub series: Series,
    /// The hour's start, ms.
    pub hour: i64,
    /// The hour's value so far (the series' unit).
    pub value: i64,
    /// What the hour was expected to hold, for the whole hour.
    pub baseline: i64,
    /// The score in thousandths.
    pub score_milli: i64,
    /// The current hour, scored on its minutes so far.
    pub partial: bool,
}

/// The median of `values` (sorted in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// The median of the same hour of the week in up to four weeks before
/// `hour`, once `hour` has a week of history after `first`.
fn same_hour_of_week(hour: i64, first: i64, value: &impl Fn(i64) -> Option<f64>) -> Option<f64> {
    let history_hours = (hour - first) / HOUR_MS;
    let mut same: Vec<f64> = (1..=4)
        .filter(|w| w * WEEK_HOURS <= history_hours)
        .filter_map(|w| value(hour - w * WEEK_HOURS * HOUR_MS))
        .collect();
    median(&mut same)
}

/// The median of `values` and 1.4826 × their median absolute deviation.
fn center_and_spread(values: &mut [f64]) -> Option<(f64, f64)> {
    let center = median(values)?;
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    Some((center, MAD_TO_SIGMA * median(&mut deviations)?))
}

/// The baseline and scale of hour `hour` of a series from its history:
/// `value(h)` is an earlier hour's value (`None`: no value), `first` the
/// series' first hour. `None` without enough history.
///
/// With a week of history, the baseline is the same hour of the week's
/// median plus the trailing week's median residual (what the week ran
/// above or below its own weeks before), and the scale is the spread of
/// those residuals: the daily and weekly shape is not counted as noise.
/// Before that, the trailing week's median and spread.
pub fn baseline(series: Series, hour: i64, first: i64, value: impl Fn(i64) -> Option<f64>) -> Option<(f64, f64)> {
    if (hour - first) / HOUR_MS < MIN_HISTORY_HOURS {
        return None;
    }
    let trailing = || (1..=WEEK_HOURS).map(move |back| hour - back * HOUR_MS).filter(|h| *h >= first);
    if let Some(seasonal) = same_hour_of_week(hour, first, &value) {
        let mut residuals: Vec<f64> =
            trailing().filter_map(|h| Some(value(h)? - same_hour_of_week(h, first, &value)?)).collect();
        if residuals.len() as i64 >= MIN_HISTORY_HOURS {
            let (level, spread) = center_and_spread(&mut residuals)?;
            let base = seasonal + level;
            return Some((base, spread.max(series.floor(base))));
        }
    }
    let mut values: Vec<f64> = trailing().filter_map(&value).collect();
    if (values.len() as i64) < MIN_HISTORY_HOURS {
        return None;
    }
    let (center, spread) = center_and_spread(&mut values)?;
    Some((center, spread.max(series.floor(center))))
}

fn score_milli(value: f64, baseline: f64, scale: f64) -> i64 {
    ((value - baseline) / scale * 1000.0).round() as i64
}

/// What the per-series reduce leaves: scored complete hours, and the
/// current hour's baseline and scale (in thousandths of the unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Scored {
    Point(AnomalyPoint),
    Current { hour: i64, baseline_milli: i64, scale_milli: i64 },
}

/// Anomaly points of every project series. `clock` holds one record, the
/// current (hour start ms, minute of the hour).
pub fn anomaly_scores<'s>(
    pageview_hours: VecCollection<'s, Time, (Symbol, i64)>,
    error_hours: VecCollection<'s, Time, (Symbol, i64)>,
    vital_samples: VecCollection<'s, Time, (Symbol, VitalName, i64, u64)>,
    clock: VecCollection<'s, Time, (i64, i64)>,
) -> VecCollection<'s, Time, AnomalyPoint> {
    let kept = |hour: i64| hour + (HISTORY_HOURS + 1) * HOUR_MS;
    let next_second = |t: &Time| t.div_ceil(SCORED_EVERY_MS) * SCORED_EVERY_MS;
    let (pageview_hours, error_hours, vital_samples) =
        (pageview_hours.delay(next_second), error_hours.delay(next_second), vital_samples.delay(next_second));
    let pageview_hours = expire_at(pageview_hours, move |(_, hour)| kept(*hour));
    let error_hours = expire_at(error_hours, move |(_, hour)| kept(*hour));
    // Quantized before they wait for their expiry, so that the samples of an
    // hour wait as a few hundred values with counts, not one by one.
    let vital_samples = vital_samples.map(|(p, m, h, v)| (p, m, h, quantize(v)));
    let vital_samples = expire_at(vital_samples, move |(_, _, hour, _)| kept(*hour));

    // (project, hour) → page views and errors.
    let tallies = pageview_hours.map(|(p, h)| ((p, h), true)).concat(error_hours.map(|(p, h)| ((p, h), false))).count();
    let pageviews = tallies
        .clone()
        .flat_map(|(((p, h), is_pageview), n)| is_pageview.then_some(((p, Series::Pageviews), (h, n as i64))));
    let rates = tallies.map(|(((p, h), is_pageview), n)| ((p, h), (is_pageview, n))).reduce(|_, values, out| {
        let count =
            |kind: bool| values.iter().filter(|((k, _), _)| *k == kind).map(|((_, n), _)| *n as i64).sum::<i64>();
        let (views, errors) = (count(true), count(false));
        if views > 0 {
            out.push((errors * 1_000_000 / views, 1));
        }
    });
    let rates = rates.map(|((p, h), rate)| ((p, Series::ErrorRate), (h, rate)));
    let p75s = vital_samples.map(|(p, m, h, v)| ((p, m, h), v)).reduce(|_, values, out| {
        let total: isize = values.iter().map(|(_, n)| *n).sum();
        let rank = (total as f64 * 0.75).ceil() as isize;
        let mut seen = 0;
        for (value, n) in values {
            seen += n;
            if seen >= rank {
                out.push((**value as i64, 1));
                return;
            }
        }
    });
    let p75s = p75s.map(|((p, m, h), v)| ((p, Series::VitalP75(m)), (h, v)));
    let hourly = pageviews.concat(rates).concat(p75s);

    // Complete hours only, so the reduce below does not run at every tick
    // (the current hour changes at every tick); and every series gets the
    // clock's hour.
    let hours = clock.clone().map(|(hour, _)| ((), hour));
    let complete = hourly
        .clone()
        .map(|entry| ((), entry))
        .join_map(hours.clone(), |_, &(key, (h, v)), &now| (key, (h, v, h < now)))
        .flat_map(|(key, (h, v, done))| done.then_some((key, (h, v, false))));
    let series_now = hourly
        .clone()
        .map(|(key, _)| key)
        .distinct()
        .map(|key| ((), key))
        .join_map(hours, |_, key, hour| (*key, *hour));
    let scored = complete.concat(series_now.map(|(key, now)| (key, (now, 0, true)))).reduce(
        |&(project, series), values, out| {
            let Some(now) = values.iter().find(|((_, _, is_clock), _)| *is_clock).map(|((h, _, _), _)| *h) else {
                return;
            };
            let by_hour: std::collections::BTreeMap<i64, f64> =
                values.iter().filter(|((_, _, c), _)| !*c).map(|((h, v, _), _)| (*h, *v as f64)).collect();
            let Some(&first) = by_hour.keys().next() else {
                return;
            };
            let value = |h: i64| match by_hour.get(&h) {
                Some(v) => Some(*v),
                None if series.is_count() && h >= first && h < now => Some(0.0),
                None => None,
            };
            for back in 1..=SCORED_HOURS {
                let hour = now - back * HOUR_MS;
                let (Some(v), Some((base, scale))) = (value(hour), baseline(series, hour, first, value)) else {
                    continue;
                };
                let point = AnomalyPoint {
                    project,
                    series,
                    hour,
                    value: v as i64,
                    baseline: base.round() as i64,
                    score_milli: score_milli(v, base, scale),
                    partial: false,
                };
                out.push((Scored::Point(point), 1));
            }
            if let Some((base, scale)) = baseline(series, now, first, value) {
                let current = Scored::Current {
                    hour: now,
                    baseline_milli: (base * 1000.0).round() as i64,
                    scale_milli: (scale * 1000.0).round() as i64,
                };
                out.push((current, 1));
            }
        },
    );
    let complete = scored.clone().flat_map(|(_, s)| match s {
        Scored::Point(point) => Some(point),
        Scored::Current { .. } => None,
    });
    let current_baselines = scored.flat_map(|(key, s)| match s {
        Scored::Current { hour, baseline_milli, scale_milli } => Some(((key, hour), (baseline_milli, scale_milli))),
        Scored::Point(_) => None,
    });

    // The current hour, scored as it fills.
    let minutes = clock.map(|(hour, minute)| (hour, minute));
    let current_values =
        hourly.map(|(key, (h, v))| (h, (key, v))).join_map(minutes, |h, (key, v), minute| ((*key, *h), (*v, *minute)));
    let current =
        current_values.join_map(current_baselines, |&((project, series), hour), &(v, minute), &(base, scale)| {
            let (base, scale) = (base as f64 / 1000.0, scale as f64 / 1000.0);
            let observed = if series.is_count() {
                if minute < FIRST_SCORED_MINUTE {
                    return None;
                }
                v as f64 * 60.0 / (minute + 1) as f64
            } else {
                v as f64
            };
            Some(AnomalyPoint {
                project,
                series,
                hour,
                value: v,
                baseline: base.round() as i64,
                score_milli: score_milli(observed, base, scale),
                partial: true,
            })
        });
    complete.concat(current.flat_map(|point| point))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use differential_dataflow::input::InputSession;
    use timely::dataflow::operators::{Inspect, Probe};

    use super::*;

    const NOW: i64 = 1_000 * WEEK_HOURS * HOUR_MS; // an hour's start

    /// A day-shaped series of page views per hour with a little noise.
    fn daily(hours: i64) -> BTreeMap<i64, i64> {
        (1..=hours)
            .map(|back| {
                let hour = NOW - back * HOUR_MS;
                let of_day = (hour / HOUR_MS) % 24;
                let noise = ((hour / HOUR_MS) * 7919 % 11) - 5;
                (hour, 100 + (50.0 * (of_day as f64 / 24.0 * std::f64::consts::TAU).sin()) as i64 + noise)
            })
            .collect()
    }

    /// The points of one project's page views (`counts`) and error events
    /// (`errors`) at the clock's (NOW, minute), on `workers` workers.
    fn run(
        workers: usize,
        counts: &BTreeMap<i64, i64>,
        errors: &BTreeMap<i64, i64>,
        minute: i64,
    ) -> BTreeMap<(Series, i64), AnomalyPoint> {
        let out: Arc<Mutex<Vec<(AnomalyPoint, Time, isize)>>> = Arc::default();
        let (counts, errors, sink) = (counts.clone(), errors.clone(), out.clone());
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut pageviews = InputSession::new();
            let mut errs = InputSession::new();
            let mut vitals = InputSession::new();
            let mut clock = InputSession::new();
            let sink = sink.clone();
            let probe = worker.dataflow::<Time, _, _>(|scope| {
                anomaly_scores(
                    pageviews.to_collection(scope),
                    errs.to_collection(scope),
                    vitals.to_collection(scope),
                    clock.to_collection(scope),
                )
                .inner
                .inspect(move |u| sink.lock().unwrap().push(*u))
                .probe()
                .0
            });
            let mine = |i: usize| i % worker.peers() == worker.index();
            for (i, (hour, n)) in counts.iter().enumerate().filter(|(i, _)| mine(*i)) {
                let _ = i;
                pageviews.update((7, *hour), *n as isize);
            }
            for (i, (hour, n)) in errors.iter().enumerate().filter(|(i, _)| mine(*i)) {
                let _ = i;
                errs.update((7, *hour), *n as isize);
            }
            if worker.index() == 0 {
                clock.insert((NOW, minute));
            }
            // Ticks far from the hours, so nothing expires on the way.
            let tick = NOW as Time;
            for input in [&mut pageviews, &mut errs] {
                input.advance_to(tick);
                input.flush();
            }
            vitals.advance_to(tick);
            vitals.flush();
            clock.advance_to(tick);
            clock.flush();
            while probe.less_than(&tick) {
                worker.step();
            }
        })
        .unwrap();
        let mut state: BTreeMap<AnomalyPoint, isize> = BTreeMap::new();
        // As of the tick: retractions due when hours expire come later.
        for (point, time, diff) in Arc::try_unwrap(out).unwrap().into_inner().unwrap() {
            if time < NOW as Time {
                *state.entry(point).or_default() += diff;
            }
        }
        state
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|(p, n)| {
                assert_eq!(n, 1, "{p:?}");
                ((p.series, p.hour), p)
            })
            .collect()
    }

    /// The plain reference: each hour's baseline from the definition, with
    /// loops and sorted vectors.
    fn reference(counts: &BTreeMap<i64, i64>, hour: i64) -> Option<(f64, f64)> {
        let first = *counts.keys().next()?;
        let value = |h: i64| (h >= first && h < NOW).then(|| *counts.get(&h).unwrap_or(&0) as f64);
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 }
        };
        let seasonal = |h: i64| {
            let weeks: Vec<f64> = (1..=4)
                .filter(|w| w * 168 <= (h - first) / HOUR_MS)
                .filter_map(|w| value(h - w * 168 * HOUR_MS))
                .collect();
            (!weeks.is_empty()).then(|| mid(weeks))
        };
        let spread = |v: &Vec<f64>| {
            let center = mid(v.clone());
            (center, 1.4826 * mid(v.iter().map(|x| (x - center).abs()).collect()))
        };
        if (hour - first) / HOUR_MS < 6 {
            return None;
        }
        let trailing: Vec<i64> = (1..=168).map(|b| hour - b * HOUR_MS).filter(|h| *h >= first).collect();
        if let Some(same) = seasonal(hour) {
            let residuals: Vec<f64> = trailing.iter().filter_map(|h| Some(value(*h)? - seasonal(*h)?)).collect();
            if residuals.len() >= 6 {
                let (level, scale) = spread(&residuals);
                let base = same + level;
                return Some((base, scale.max(1.0f64.max(0.05 * base.abs()))));
            }
        }
        let values: Vec<f64> = trailing.iter().filter_map(|h| value(*h)).collect();
        let (center, scale) = spread(&values);
        Some((center, scale.max(1.0f64.max(0.05 * center.abs()))))
    }

    #[test]
    fn complete_hours_are_scored_as_the_plain_reference_scores_them_and_spikes_stand_out() {
        let mut counts = daily(3 * WEEK_HOURS);
        let spike = NOW - 30 * HOUR_MS;
        *counts.get_mut(&spike).unwrap() *= 4;
        let drop = NOW - 50 * HOUR_MS;
        *counts.get_mut(&drop).unwrap() = 0;
        for workers in [1, 2] {
            let points = run(workers, &counts, &BTreeMap::new(), 0);
            let pageviews: Vec<&AnomalyPoint> = points.values().filter(|p| p.series == Series::Pageviews).collect();
            assert_eq!(
                pageviews.len() as i64,
                SCORED_HOURS,
                "every complete hour of the week, the current one not yet"
            );
            for p in &pageviews {
                let (base, scale) = reference(&counts, p.hour).unwrap();
                let expected = (((counts[&p.hour] as f64) - base) / scale * 1000.0).round() as i64;
                assert!((p.score_milli - expected).abs() <= 1, "{p:?}: reference {expected}");
                assert_eq!(p.baseline, base.round() as i64);
            }
            let score = |hour: i64| points[&(Series::Pageviews, hour)].score_milli as f64 / 1000.0;
            assert!(score(spike) > 10.0, "the spike: {}", score(spike));
            assert!(score(drop) < -5.0, "the drop: {}", score(drop));
            let loud = pageviews
                .iter()
                .filter(|p| p.hour != spike && p.hour != drop && (p.score_milli as f64 / 1000.0).abs() > 4.0)
                .count();
            assert!(loud <= 5, "{loud} of 166 ordinary hours scored beyond ±4");
            let loudest =
                pageviews.iter().filter(|p| p.hour != spike && p.hour != drop).map(|p| p.score_milli.abs()).max();
            assert!(loudest < Some(6_000), "an ordinary hour scored {loudest:?} thousandths");
        }
    }

    #[test]
    fn the_current_hour_is_projected_from_its_minutes_and_rates_are_scored() {
        let mut counts = daily(2 * WEEK_HOURS);
        let (base, scale) = reference(&counts, NOW).unwrap();
        // Half an hour in, half the usual page views: ordinary.
        counts.insert(NOW, (base / 2.0).round() as i64);
        let errors: BTreeMap<i64, i64> =
            counts.keys().map(|h| (*h, if *h == NOW { counts[h] / 2 } else { counts[h] / 100 })).collect();
        let points = run(1, &counts, &errors, 29);
        let now = points[&(Series::Pageviews, NOW)];
        assert!(now.partial && (now.score_milli as f64 / 1000.0).abs() < 1.0, "{now:?} (scale {scale})");
        // Half the page views with errors, against 1 %: an error-rate spike.
        let rate = points[&(Series::ErrorRate, NOW)];
        assert!(rate.score_milli > 50_000, "{rate:?}");
        assert_eq!(rate.value, errors[&NOW] * 1_000_000 / counts[&NOW], "errors per page view in millionths");
        // In the hour's first minutes, counts are not scored yet.
        let early = run(1, &counts, &errors, 5);
        assert!(!early.contains_key(&(Series::Pageviews, NOW)));
        assert!(early.contains_key(&(Series::ErrorRate, NOW)), "rates need no projection");
    }

    #[test]
    fn changes_reach_the_scores_at_whole_seconds_of_ingestion_time() {
        let counts = daily(WEEK_HOURS);
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        timely::execute(timely::Config::process(1), move |worker| {
            let mut pageviews = InputSession::new();
            let mut clock = InputSession::new();
            let sink = sink.clone();
            let (mut errors, mut vitals) = (InputSession::new(), InputSession::new());
            let probe = worker.dataflow::<Time, _, _>(|scope| {
                let (errors, vitals) = (errors.to_collection(scope), vitals.to_collection(scope));
                anomaly_scores(pageviews.to_collection(scope), errors, vitals, clock.to_collection(scope))
                    .inner
                    .inspect(move |(_, time, _)| sink.lock().unwrap().push(*time))
                    .probe()
                    .0
            });
            clock.insert((NOW, 30));
            errors.close();
            vitals.close();
            // An hour's page views at each of ten ticks 100 ms apart, an
            // old hour's late page view at each tick between.
            let start = NOW as Time + 3 * SCORED_EVERY_MS;
            for (i, (hour, n)) in counts.iter().enumerate().take(10) {
                let tick = start + 100 * i as Time;
                pageviews.advance_to(tick);
                clock.advance_to(tick);
                pageviews.update((7, *hour), *n as isize);
                pageviews.advance_to(tick + 50);
                clock.advance_to(tick + 50);
                pageviews.insert((7, NOW - 100 * HOUR_MS));
                pageviews.flush();
                clock.flush();
                while probe.less_than(pageviews.time()) {
                    worker.step();
                }
            }
            let end = start + 2 * SCORED_EVERY_MS;
            pageviews.advance_to(end);
            clock.advance_to(end);
            pageviews.flush();
            clock.flush();
            while probe.less_than(&end) {
                worker.step();
            }
        })
        .unwrap();
        let times = Arc::try_unwrap(out).unwrap().into_inner().unwrap();
        assert!(!times.is_empty(), "the hours were scored");
        let scored_at: std::collections::BTreeSet<Time> = times.into_iter().collect();
        assert!(
            scored_at.iter().all(|t| t % SCORED_EVERY_MS == 0),
            "twenty ticks of changes are scored at whole seconds only: {scored_at:?}"
        );
    }
}
