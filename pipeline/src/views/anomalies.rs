//! Each project series' scored hours, as the dataflow keeps them: the last
//! week of complete hours and the current hour once it is scored.

use std::collections::{BTreeMap, HashMap};

use sightline_operators::{AnomalyPoint, Series, Symbol};

#[derive(Default)]
pub(crate) struct AnomalyViews {
    series: HashMap<(Symbol, Series), BTreeMap<i64, AnomalyPoint>>,
}

impl AnomalyViews {
    /// Retractions come before insertions within a tick, so a rescored hour
    /// is replaced, not lost.
    pub(crate) fn apply(&mut self, point: &AnomalyPoint, diff: isize) {
        let hours = self.series.entry((point.project, point.series)).or_default();
        if diff > 0 {
            hours.insert(point.hour, *point);
        } else if hours.get(&point.hour) == Some(point) {
            hours.remove(&point.hour);
            if hours.is_empty() {
                self.series.remove(&(point.project, point.series));
            }
        }
    }

    pub(crate) fn points(&self, project: Symbol, series: Series) -> Vec<AnomalyPoint> {
        self.series.get(&(project, series)).map(|hours| hours.values().copied().collect()).unwrap_or_default()
    }

    /// The newest scored hour, without copying the others (the alert
    /// engine reads it after every tick).
    pub(crate) fn latest(&self, project: Symbol, series: Series) -> Option<AnomalyPoint> {
        self.series.get(&(project, series)).and_then(|hours| hours.last_key_value()).map(|(_, p)| *p)
    }

    pub(crate) fn forget(&mut self, project: Symbol) {
        self.series.retain(|(p, _), _| *p != project);
    }
}
