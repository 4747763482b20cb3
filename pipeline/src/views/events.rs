//! The custom events read model: a count per cell (project, interval,
//! bucket, name, path, device, browser, release, property set). A query
//! scans the cells of its range once, keeps those its filters match, and
//! sums them into a series, a total, counts per name and property
//! breakdowns.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sightline_operators::{EventCell, EventDims, Interval, Symbol, Time};

use super::{MAX_SERIES_POINTS, Names, Oldest, expired};
use crate::interner::{PropPairs, PropSets};

/// Most values a breakdown lists per property.
pub const BREAKDOWN_VALUES: usize = 20;

/// Every project's custom event counts.
#[derive(Debug, Default)]
pub(super) struct EventViews {
    cells: BTreeMap<EventCell, i64>,
    /// The oldest bucket start held per interval: expiry scans the cells
    /// only once one of them has left the window.
    oldest: Oldest,
}

impl EventViews {
    /// Drops everything of a deleted project.
    pub(super) fn forget(&mut self, project: Symbol) {
        self.cells.retain(|cell, _| cell.project != project);
    }

    /// Drops the cells whose bucket left the window by the tick `through`.
    pub(super) fn expire(&mut self, through: Time, retention_ms: i64) {
        if self.oldest.any_expired(through, retention_ms) {
            self.cells.retain(|cell, _| !expired(cell.interval, cell.bucket, through, retention_ms));
            self.oldest = Oldest::of(self.cells.keys().map(|cell| (cell.interval, cell.bucket)));
        }
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

    fn matches_dims(&self, name: Symbol, dims: &EventDims) -> bool {
        let ok = |want: Option<Symbol>, have: Symbol| want.is_none_or(|w| w == have);
        ok(self.name, name)
            && ok(self.path, dims.path)
            && ok(self.device, dims.device)
            && ok(self.browser, dims.browser)
            && ok(self.release, dims.release)
    }
}

impl EventViews {
    /// Adds `diff` events to a cell, unless its bucket has already left the
    /// window.
    pub(super) fn apply(&mut self, cell: &EventCell, diff: i64, (through, retention_ms): (Time, i64)) {
        if expired(cell.interval, cell.bucket, through, retention_ms) {
            return;
        }
        self.oldest.note(cell.interval, cell.bucket);
        let count = self.cells.entry(*cell).or_default();
        *count += diff;
        if *count == 0 {
            self.cells.remove(cell);
        }
    }

    pub(super) fn answer(&self, names: &Names, prop_sets: &PropSets, q: &EventsQuery) -> EventsAnswer {
        let width = q.interval.millis();
        let first = q.interval.bucket_of(q.from);
        let mut per_bucket: BTreeMap<i64, i64> = BTreeMap::new();
        let mut per_name: HashMap<Symbol, i64> = HashMap::new();
        let mut per_prop: HashMap<(Symbol, Symbol), i64> = HashMap::new();
        if let Some(project) = names.lookup(&q.project_id) {
            let filter = Resolved::new(names, q);
            let dims = EventDims { path: 0, device: 0, browser: 0, release: 0, props: 0 };
            let at = |name, bucket| EventCell { project, interval: q.interval, name, bucket, dims };
            // The range of each event name (the one asked for, or each the
            // project has) is one run of cells.
            let event_names = match filter.name {
                Some(name) => vec![name],
                None => {
                    let mut seen = Vec::new();
                    let mut next = at(0, i64::MIN);
                    while let Some((cell, _)) = self.cells.range(next..).next() {
                        if cell.project != project || cell.interval != q.interval {
                            break;
                        }
                        seen.push(cell.name);
                        let Some(after) = cell.name.checked_add(1) else { break };
                        next = at(after, i64::MIN);
                    }
                    seen
                }
            };
            let runs = event_names.into_iter().flat_map(|name| self.cells.range(at(name, first)..at(name, q.to)));
            // Each property set's pairs, and whether they hold every
            // filtered pair: looked up once per set.
            let mut sets: HashMap<Symbol, (bool, PropPairs)> = HashMap::new();
            for (cell, &count) in runs {
                if !filter.matches_dims(cell.name, &cell.dims) {
                    continue;
                }
                let (matches, pairs) = sets.entry(cell.dims.props).or_insert_with(|| {
                    let pairs = prop_sets.pairs(cell.dims.props);
                    (filter.props.iter().all(|wanted| pairs.contains(wanted)), pairs)
                });
                if !*matches {
                    continue;
                }
                *per_bucket.entry(cell.bucket).or_default() += count;
                *per_name.entry(cell.name).or_default() += count;
                for pair in pairs.iter() {
                    *per_prop.entry(*pair).or_default() += count;
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

    use super::*;
    use crate::interner::Interner;

    /// Three sign-ups (two on the pro plan, one from Firefox) and a
    /// purchase, in two hour buckets.
    fn fixture() -> (Interner, PropSets, EventViews) {
        let (names, sets, mut views) = (Interner::default(), PropSets::default(), EventViews::default());
        let mut add = |hour: i64, name: &str, browser: &str, plan: &str| {
            let props: BTreeMap<String, PropValue> = [("plan".to_string(), PropValue::Str(plan.into()))].into();
            let cell = EventCell {
                project: names.intern("p"),
                interval: Interval::Hour,
                bucket: hour * 3_600_000,
                name: names.intern(name),
                dims: EventDims {
                    path: names.intern("/"),
                    device: names.intern("desktop"),
                    browser: names.intern(browser),
                    release: names.intern(""),
                    props: sets.intern(&names, &props),
                },
            };
            views.apply(&cell, 1, (0, i64::MAX / 4));
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
        let (names, sets, views) = fixture();
        let signups = views.answer(&names, &sets, &query(Some("signup"), EventFilters::default()));
        assert_eq!(signups.total, 3);
        assert_eq!(signups.series, vec![EventsPoint { t: 0, count: 2 }, EventsPoint { t: 3_600_000, count: 1 }]);
        assert_eq!(
            signups.breakdown["plan"],
            vec![BreakdownValue { value: "pro".into(), count: 2 }, BreakdownValue { value: "free".into(), count: 1 }]
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
