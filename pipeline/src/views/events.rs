//! The custom events read model: per project, interval, bucket and event
//! name, a count per cell (path, device, browser and release, as an id from
//! a [`DimsTable`], and the property set), and in hour buckets a
//! count per property set. A query reads the buckets of its range: the
//! property set counts when no dimension is filtered, else the cells; it
//! sums them into a series, a total, counts per name and property
//! breakdowns.
//!
//! A bucket is dropped whole once it has been out of the retention window,
//! and what still arrives for it is not counted.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{EventRow, Interval, Symbol, Time};

use super::cells::{Cells, add_count};
use super::pageviews::{DimsId, DimsTable};
use super::{KEPT, MAX_SERIES_POINTS, Names, Sealing, drop_expired, in_window_buckets, interval_index};
use crate::interner::{PropPairs, PropSets};

/// Most values a breakdown lists per property.
pub const BREAKDOWN_VALUES: usize = 20;

/// An event's device, browser and release.
type EventDevice = (Symbol, Symbol, Symbol);

/// The counts of one event name in one bucket.
#[derive(Debug, Default)]
struct NameCounts {
    total: i64,
    /// Per property set; only in hour buckets (a minute's cells are
    /// few enough to scan, and nearly one per event).
    by_props: Option<Box<Cells<Symbol, i32>>>,
    /// Per (path, device id, property set): 12 bytes of key where the
    /// `EventCell` of every dimension took 40, in a `BTreeMap` of every
    /// cell.
    cells: Cells<(Symbol, DimsId, Symbol), i32>,
}

/// A bucket's counts per event name. Names are few (a site's handful), so
/// a list: a hash table of them took about 1.8 KB per minute bucket, 52 MB
/// at 10M events.
type ByName = Vec<(Symbol, NameCounts)>;

/// One project's custom events, per interval, per bucket start, per name.
#[derive(Debug, Default)]
struct ProjectEvents {
    by_interval: [BTreeMap<i64, ByName>; KEPT],
    sealing: Sealing,
}

fn seal(by_name: &mut ByName) {
    by_name.shrink_to_fit();
    for (_, counts) in by_name {
        if let Some(by_props) = &mut counts.by_props {
            by_props.seal();
        }
        counts.cells.seal();
    }
}

/// Every project's custom event counts.
#[derive(Debug, Default)]
pub(super) struct EventViews {
    projects: HashMap<Symbol, ProjectEvents>,
    devices: DimsTable<EventDevice>,
}

impl EventViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.projects.remove(&project);
    }

    /// Drops the buckets that left the window by the tick `through`, and
    /// seals those that ended.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        for project in self.projects.values_mut() {
            project.sealing.seal_ended(&mut project.by_interval, |_, by_name| seal(by_name));
            drop_expired(&mut project.by_interval, through, retention_ms);
        }
        self.projects.retain(|_, p| p.by_interval.iter().any(|b| !b.is_empty()));
    }
}

/// Filters any query over custom events can combine.
#[derive(Debug, Clone, Default)]
pub struct EventFilters {
    pub path: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub release: Option<String>,
    /// `prop.<key>=<value>` pairs; all must hold.
    pub props: Vec<(String, String)>,
}

/// A custom events question.
#[derive(Debug, Clone)]
pub struct EventsQuery {
    pub project_id: String,
    pub interval: Interval,
    pub from: i64,
    pub to: i64,
    /// Only events of this name; all custom events without it.
    pub name: Option<String>,
    pub filters: EventFilters,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventsPoint {
    pub t: i64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakdownValue {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventNameCount {
    pub name: String,
    pub count: i64,
}

/// The contract's answer to `events`, plus the counts per event name (most
/// frequent first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventsAnswer {
    pub total: i64,
    pub series: Vec<EventsPoint>,
    /// Per property: its most frequent values among the matching events.
    pub breakdown: BTreeMap<String, Vec<BreakdownValue>>,
    pub names: Vec<EventNameCount>,
}

/// Filters as symbols; a value never seen is `Symbol::MAX` and matches
/// nothing.
struct Resolved {
    name: Option<Symbol>,
    path: Option<Symbol>,
    device: Option<Symbol>,
    browser: Option<Symbol>,
    release: Option<Symbol>,
    props: Vec<(Symbol, Symbol)>,
}

impl Resolved {
    fn new(names: &Names, q: &EventsQuery) -> Resolved {
        let resolve = |v: &str| names.lookup(v).unwrap_or(Symbol::MAX);
        let f = &q.filters;
        Resolved {
            name: q.name.as_deref().map(resolve),
            path: f.path.as_deref().map(resolve),
            device: f.device.as_deref().map(resolve),
            browser: f.browser.as_deref().map(resolve),
            release: f.release.as_deref().map(resolve),
            props: f.props.iter().map(|(k, v)| (resolve(k), resolve(v))).collect(),
        }
    }

    /// Whether a filter on path, device, browser or release is set.
    fn any_dimension(&self) -> bool {
        self.path.is_some() || self.device.is_some() || self.browser.is_some() || self.release.is_some()
    }

    fn matches_dims(&self, path: Symbol, (device, browser, release): EventDevice) -> bool {
        let ok = |want: Option<Symbol>, have: Symbol| want.is_none_or(|w| w == have);
        ok(self.path, path) && ok(self.device, device) && ok(self.browser, browser) && ok(self.release, release)
    }
}

impl EventViews {
    /// Counts `diff` events of a row in its bucket of every interval still in
    /// the window.
    pub(super) fn apply(&mut self, row: &EventRow, diff: i64, (through, retention_ms): (Time, i64)) {
        let d = &row.dims;
        let device = self.devices.id((d.device, d.browser, d.release));
        let project = self.projects.entry(row.project).or_default();
        project.sealing.note(row.ts, through);
        in_window_buckets(&mut project.by_interval, row.ts, (through, retention_ms), |interval, start, buckets| {
            let bucket = buckets.entry(start).or_default();
            let at = bucket.iter().position(|(name, _)| *name == row.name).unwrap_or_else(|| {
                bucket.push((row.name, NameCounts::default()));
                bucket.len() - 1
            });
            let counts = &mut bucket[at].1;
            counts.total += diff;
            if interval != Interval::Minute {
                add_count(counts.by_props.get_or_insert_default(), d.props, diff);
            }
            add_count(&mut counts.cells, (d.path, device, d.props), diff);
            if counts.total == 0 {
                bucket.swap_remove(at);
                if bucket.is_empty() {
                    buckets.remove(&start);
                }
            }
        });
    }

    pub(super) fn answer(&self, names: &Names, prop_sets: &PropSets, q: &EventsQuery) -> EventsAnswer {
        let width = q.interval.millis();
        let first = q.interval.bucket_of(q.from);
        let mut per_bucket: BTreeMap<i64, i64> = BTreeMap::new();
        let mut per_name: HashMap<Symbol, i64> = HashMap::new();
        let mut per_prop: HashMap<(Symbol, Symbol), i64> = HashMap::new();
        let project = names.lookup(&q.project_id).and_then(|p| self.projects.get(&p));
        if let Some(project) = project {
            let filter = Resolved::new(names, q);
            // Each property set's pairs, and whether they hold every
            // filtered pair: looked up once per set.
            let mut sets: HashMap<Symbol, (bool, PropPairs)> = HashMap::new();
            let mut count_in = |bucket: i64, name: Symbol, props: Symbol, count: i64| {
                let (matches, pairs) = sets.entry(props).or_insert_with(|| {
                    let pairs = prop_sets.pairs(props);
                    (filter.props.iter().all(|wanted| pairs.contains(wanted)), pairs)
                });
                if *matches {
                    *per_bucket.entry(q.interval.bucket_of(bucket)).or_default() += count;
                    *per_name.entry(name).or_default() += count;
                    for pair in pairs.iter() {
                        *per_prop.entry(*pair).or_default() += count;
                    }
                }
            };
            let buckets = project.by_interval[interval_index(q.interval.kept())].range(first..q.to);
            for (&bucket, by_name) in buckets {
                let wanted = by_name.iter().filter(|(name, _)| filter.name.is_none_or(|wanted| wanted == *name));
                for &(name, ref counts) in wanted {
                    if filter.any_dimension() || q.interval == Interval::Minute {
                        for (&(path, device, props), &n) in counts.cells.iter() {
                            if filter.matches_dims(path, self.devices.get(device)) {
                                count_in(bucket, name, props, i64::from(n));
                            }
                        }
                    } else {
                        for (&props, &n) in counts.by_props.iter().flat_map(|by_props| by_props.iter()) {
                            count_in(bucket, name, props, i64::from(n));
                        }
                    }
                }
            }
        }
        let mut series = Vec::new();
        let mut t = first;
        while t < q.to && (series.len() as i64) < MAX_SERIES_POINTS {
            series.push(EventsPoint { t, count: per_bucket.get(&t).copied().unwrap_or(0) });
            t += width;
        }
        let mut by_key: BTreeMap<String, Vec<BreakdownValue>> = BTreeMap::new();
        for ((key, value), count) in per_prop {
            by_key
                .entry(names.name(key).to_string())
                .or_default()
                .push(BreakdownValue { value: names.name(value).to_string(), count });
        }
        for values in by_key.values_mut() {
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values.truncate(BREAKDOWN_VALUES);
        }
        let mut per_name: Vec<EventNameCount> =
            per_name.into_iter().map(|(n, count)| EventNameCount { name: names.name(n).to_string(), count }).collect();
        per_name.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        EventsAnswer { total: per_bucket.values().sum(), series, breakdown: by_key, names: per_name }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sightline_model::PropValue;
    use sightline_operators::EventDims;

    use super::*;
    use crate::interner::Interner;

    /// Three sign-ups (two on the pro plan, one from Firefox) and a
    /// purchase, in two hour buckets.
    fn fixture() -> (Interner, PropSets, EventViews) {
        let (names, sets, mut views) = (Interner::default(), PropSets::default(), EventViews::default());
        let mut add = |hour: i64, name: &str, browser: &str, plan: &str| {
            let props: BTreeMap<String, PropValue> = [("plan".to_string(), PropValue::Str(plan.into()))].into();
            let row = EventRow {
                project: names.intern("p"),
                ts: hour * 3_600_000 + 60_000,
                name: names.intern(name),
                dims: EventDims {
                    path: names.intern("/"),
                    device: names.intern("desktop"),
                    browser: names.intern(browser),
                    release: names.intern(""),
                    props: sets.intern(&mut names.batch(), &props),
                },
            };
            views.apply(&row, 1, (0, i64::MAX / 4));
        };
        add(0, "signup", "Chrome", "pro");
        add(0, "signup", "Firefox", "free");
        add(1, "signup", "Chrome", "pro");
        add(1, "purchase", "Chrome", "pro");
        (names, sets, views)
    }

    fn query(name: Option<&str>, filters: EventFilters) -> EventsQuery {
        EventsQuery {
            project_id: "p".into(),
            interval: Interval::Hour,
            from: 0,
            to: 2 * 3_600_000,
            name: name.map(str::to_owned),
            filters,
        }
    }

    #[test]
    fn filters_combine_and_breakdowns_follow_them() {
        // Hour buckets answer from their property set counts without a
        // dimension filter; minute buckets always from their cells.
        for interval in [Interval::Hour, Interval::Minute] {
            let query = |name: Option<&str>, filters: EventFilters| EventsQuery { interval, ..query(name, filters) };
            let (names, sets, views) = fixture();
            let signups = views.answer(&names, &sets, &query(Some("signup"), EventFilters::default()));
            assert_eq!(signups.total, 3);
            let counted: Vec<_> = signups.series.iter().filter(|p| p.count > 0).cloned().collect();
            let at = |hour: i64, count| EventsPoint { t: interval.bucket_of(hour * 3_600_000 + 60_000), count };
            assert_eq!(counted, vec![at(0, 2), at(1, 1)]);
            assert_eq!(
                signups.breakdown["plan"],
                vec![
                    BreakdownValue { value: "pro".into(), count: 2 },
                    BreakdownValue { value: "free".into(), count: 1 }
                ]
            );
            let pro_chrome = EventFilters {
                browser: Some("Chrome".into()),
                props: vec![("plan".into(), "pro".into())],
                ..Default::default()
            };
            let all = views.answer(&names, &sets, &query(None, pro_chrome));
            assert_eq!(all.total, 3);
            assert_eq!(all.names[0], EventNameCount { name: "signup".into(), count: 2 });
            assert_eq!(all.names[1], EventNameCount { name: "purchase".into(), count: 1 });
            let unknown = EventFilters { props: vec![("plan".into(), "enterprise".into())], ..Default::default() };
            assert_eq!(views.answer(&names, &sets, &query(None, unknown)).total, 0);
            let firefox = EventFilters { browser: Some("Firefox".into()), ..Default::default() };
            assert_eq!(views.answer(&names, &sets, &query(Some("signup"), firefox)).breakdown["plan"][0].value, "free");
        }
    }
}
