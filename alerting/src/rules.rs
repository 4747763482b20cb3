//! An alert rule's definition (what the store keeps as JSON), its value
//! from the window the dataflow keeps for it, and the state machine that
//! turns values over time into firing and resolved transitions.

use serde::{Deserialize, Serialize};
use sightline_model::VitalName;
use sightline_operators::{MAX_WINDOW_S, Series, Watch};
use sightline_pipeline::views::RuleWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Error events in the window.
    ErrorCount,
    /// Error events per page view in the window (none without page views).
    ErrorRate,
    /// Error groups first seen in the window (by their first event's time).
    NewErrorGroup,
    /// The window's p75 of one vital (ms; CLS unitless).
    VitalP75,
    /// Page views in the window.
    Pageviews,
    /// The anomaly score of a project series (`series`).
    Anomaly,
}

/// The series an `anomaly` rule watches the score of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalySeries {
    /// Page views per hour.
    Pageviews,
    /// Errors per page view per hour.
    ErrorRate,
    /// A vital's p75 per hour (with `vital`).
    VitalP75,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ErrorCount => "error_count",
            Metric::ErrorRate => "error_rate",
            Metric::NewErrorGroup => "new_error_group",
            Metric::VitalP75 => "vital_p75",
            Metric::Pageviews => "pageviews",
            Metric::Anomaly => "anomaly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Gt,
    Lt,
}

/// Which events count for a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// What a rule watches and when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDefinition {
    pub metric: Metric,
    /// The vital of `vital_p75` (the metric or the anomaly series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vital: Option<VitalName>,
    /// The series of an `anomaly` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<AnomalySeries>,
    pub comparison: Comparison,
    pub threshold: f64,
    /// The trailing window, in seconds.
    pub window_s: i64,
    /// How long the condition must hold before the rule fires.
    #[serde(default)]
    pub for_s: i64,
    /// How long after a resolve the rule stays quiet.
    #[serde(default)]
    pub cooldown_s: i64,
    #[serde(default)]
    pub filters: RuleFilters,
}

/// The longest `for_s` and `cooldown_s`.
pub const MAX_WAIT_S: i64 = 7 * 86_400;

impl RuleDefinition {
    /// What the definition lacks, as (field, message), if anything.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_WINDOW_S).contains(&self.window_s) {
            return Err(("window_s", format!("1 to {MAX_WINDOW_S} seconds, got {}", self.window_s)));
        }
        if !self.threshold.is_finite() {
            return Err(("threshold", "a finite number".into()));
        }
        for (field, value) in [("for_s", self.for_s), ("cooldown_s", self.cooldown_s)] {
            if !(0..=MAX_WAIT_S).contains(&value) {
                return Err((field, format!("0 to {MAX_WAIT_S} seconds, got {value}")));
            }
        }
        match (self.metric, self.series) {
            (Metric::Anomaly, None) => {
                return Err(("series", "`anomaly` needs `series`: pageviews, error_rate or vital_p75".into()));
            }
            (Metric::Anomaly, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(("series", "only `anomaly` takes `series`".into())),
        }
        let wants_vital = self.metric == Metric::VitalP75 || self.series == Some(AnomalySeries::VitalP75);
        match (wants_vital, self.vital) {
            (true, None) => return Err(("vital", "`vital_p75` needs `vital` (LCP, INP, CLS ...)".into())),
            (false, Some(_)) => return Err(("vital", "only `vital_p75` takes `vital`".into())),
            _ => {}
        }
        if self.metric == Metric::NewErrorGroup && self.filters != RuleFilters::default() {
            return Err(("filters", "`new_error_group` rules watch the whole project".into()));
        }
        Ok(())
    }

    /// The signals the dataflow keeps in a window for the rule; `None` for
    /// an anomaly rule, which reads its series' score instead.
    pub fn watch(&self) -> Option<Watch> {
        match self.metric {
            Metric::ErrorCount => Some(Watch::Errors),
            Metric::Pageviews => Some(Watch::Pageviews),
            Metric::ErrorRate => Some(Watch::ErrorsAndPageviews),
            Metric::VitalP75 => Some(Watch::Vital(self.vital.unwrap_or(VitalName::Lcp))),
            Metric::NewErrorGroup => Some(Watch::NewGroups),
            Metric::Anomaly => None,
        }
    }

    /// The series whose score an anomaly rule compares.
    pub fn anomaly_series(&self) -> Option<Series> {
        match (self.metric, self.series?) {
            (Metric::Anomaly, AnomalySeries::Pageviews) => Some(Series::Pageviews),
            (Metric::Anomaly, AnomalySeries::ErrorRate) => Some(Series::ErrorRate),
            (Metric::Anomaly, AnomalySeries::VitalP75) => Some(Series::VitalP75(self.vital?)),
            _ => None,
        }
    }

    /// The rule's value from its window, or for an anomaly rule its series'
    /// newest score; `None` when there is nothing to measure (no page views
    /// for a rate, no measurement for a p75, no score yet).
    pub fn value(&self, window: &RuleWindow, anomaly_score: Option<f64>) -> Option<f64> {
        match self.metric {
            Metric::ErrorCount => Some(window.errors as f64),
            Metric::Pageviews => Some(window.pageviews as f64),
            Metric::ErrorRate => (window.pageviews > 0).then(|| window.errors as f64 / window.pageviews as f64),
            Metric::VitalP75 => window.vital_quantile(0.75),
            Metric::NewErrorGroup => Some(window.new_groups as f64),
            Metric::Anomaly => anomaly_score,
        }
    }

    /// Whether a value crosses the threshold.
    pub fn crossed(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| match self.comparison {
            Comparison::Gt => v > self.threshold,
            Comparison::Lt => v < self.threshold,
        })
    }
}

/// Where a rule stands between evaluations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleState {
    /// Since when the condition has held (ms), while it holds.
    pub crossed_since: Option<i64>,
    /// The open incident, while firing.
    pub open_incident: Option<String>,
    /// When the last incident resolved (ms), for the cooldown.
    pub last_resolved_at: Option<i64>,
}

/// A transition to deliver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    Fire,
    Resolve,
}

/// Advances a rule's state to `now` given its current value. A firing
/// needs the condition held for `for_s`, outside the cooldown after the
/// last resolve, and the rule not muted; a firing rule resolves as soon as
/// the condition no longer holds (muted or not). The caller records the
/// transition and sets `open_incident` / `last_resolved_at`.
pub fn step(
    def: &RuleDefinition,
    muted: bool,
    state: &mut RuleState,
    value: Option<f64>,
    now: i64,
) -> Option<Transition> {
    let crossed = def.crossed(value);
    if !crossed {
        state.crossed_since = None;
        return state.open_incident.is_some().then_some(Transition::Resolve);
    }
    let since = *state.crossed_since.get_or_insert(now);
    if state.open_incident.is_some() || muted {
        return None;
    }
    let held = now - since >= def.for_s * 1000;
    let cooled = state.last_resolved_at.is_none_or(|at| now - at >= def.cooldown_s * 1000);
    (held && cooled).then_some(Transition::Fire)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(for_s: i64, cooldown_s: i64) -> RuleDefinition {
        RuleDefinition {
            metric: Metric::ErrorCount,
            vital: None,
            series: None,
            comparison: Comparison::Gt,
            threshold: 5.0,
            window_s: 60,
            for_s,
            cooldown_s,
            filters: RuleFilters::default(),
        }
    }

    /// Runs values at times through the state machine as the engine does,
    /// and returns the transitions with their times.
    fn run(def: &RuleDefinition, muted: bool, values: &[(i64, f64)]) -> Vec<(i64, Transition)> {
        let mut state = RuleState::default();
        let mut out = Vec::new();
        for &(now, value) in values {
            if let Some(t) = step(def, muted, &mut state, Some(value), now) {
                match t {
                    Transition::Fire => state.open_incident = Some(format!("inc{now}")),
                    Transition::Resolve => {
                        state.open_incident = None;
                        state.last_resolved_at = Some(now);
                    }
                }
                out.push((now, t));
            }
        }
        out
    }

    #[test]
    fn a_rule_fires_once_and_resolves_once() {
        let values = [(0, 1.0), (1_000, 6.0), (2_000, 9.0), (3_000, 7.0), (4_000, 5.0), (5_000, 2.0)];
        assert_eq!(run(&rule(0, 0), false, &values), [(1_000, Transition::Fire), (4_000, Transition::Resolve)]);
    }

    #[test]
    fn for_at_least_waits_for_the_condition_to_hold() {
        let values = [(0, 6.0), (1_000, 2.0), (2_000, 6.0), (4_000, 6.0), (5_000, 6.0), (7_000, 1.0)];
        assert_eq!(run(&rule(3, 0), false, &values), [(5_000, Transition::Fire), (7_000, Transition::Resolve)]);
    }

    #[test]
    fn the_cooldown_keeps_a_new_incident_back_until_it_ends() {
        let values = [(0, 6.0), (1_000, 1.0), (2_000, 6.0), (10_000, 6.0), (11_000, 6.0)];
        assert_eq!(
            run(&rule(0, 10), false, &values),
            [(0, Transition::Fire), (1_000, Transition::Resolve), (11_000, Transition::Fire)]
        );
    }

    #[test]
    fn a_muted_rule_never_fires() {
        assert!(run(&rule(0, 0), true, &[(0, 6.0), (1_000, 9.0), (2_000, 1.0)]).is_empty());
    }

    #[test]
    fn values_come_from_the_window_and_definitions_are_checked() {
        let window = RuleWindow { errors: 3, pageviews: 12, ..RuleWindow::default() };
        let mut def = rule(0, 0);
        assert_eq!(def.value(&window, None), Some(3.0));
        def.metric = Metric::ErrorRate;
        assert_eq!(def.value(&window, None), Some(0.25));
        assert_eq!(def.value(&RuleWindow::default(), None), None, "no rate without page views");
        assert!(!def.crossed(None));
        def.metric = Metric::VitalP75;
        assert_eq!(def.check().unwrap_err().0, "vital");
        def.vital = Some(VitalName::Lcp);
        def.check().unwrap();
        def.metric = Metric::Anomaly;
        assert_eq!(def.check().unwrap_err().0, "series");
        def.series = Some(AnomalySeries::VitalP75);
        def.check().unwrap();
        assert_eq!(def.anomaly_series(), Some(Series::VitalP75(VitalName::Lcp)));
        assert_eq!(def.value(&window, Some(4.5)), Some(4.5), "an anomaly rule's value is the score");
        def.vital = None;
        assert_eq!(def.check().unwrap_err().0, "vital");
        def.window_s = 0;
        def.vital = Some(VitalName::Lcp);
        assert_eq!(def.check().unwrap_err().0, "window_s");
        def.window_s = 60;
        def.for_s = -1;
        assert_eq!(def.check().unwrap_err().0, "for_s");
    }
}
