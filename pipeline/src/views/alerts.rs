//! Each alert rule's window as the dataflow keeps it: how many errors and
//! page views, and the quantized vital values, received within the rule's
//! trailing window. The alert engine reads a rule's value from here after
//! every tick that changed it.

use std::collections::{BTreeMap, HashMap};

use sightline_operators::vitals::{empty_histogram, unscale};
use sightline_operators::{RuleSample, Signal, Symbol};

/// The signals in one rule's window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleWindow {
    pub errors: i64,
    pub pageviews: i64,
    /// Error groups first seen within the window.
    pub new_groups: i64,
    /// Quantized (scaled) vital value → how many.
    pub vitals: BTreeMap<u64, i64>,
    /// The vital those values measure.
    pub vital: Option<sightline_model::VitalName>,
}

impl RuleWindow {
    /// The `q` quantile (0..1) of the window's vital measurements in the
    /// metric's unit (ms; CLS unitless), `None` without any.
    pub fn vital_quantile(&self, q: f64) -> Option<f64> {
        let metric = self.vital?;
        let mut histogram = empty_histogram();
        for (&value, &count) in &self.vitals {
            if count > 0 {
                histogram.record_n(value, count as u64).ok()?;
            }
        }
        if histogram.is_empty() {
            return None;
        }
        // The middle of the bucket, as the vitals view reads it.
        Some(unscale(metric, histogram.median_equivalent(histogram.value_at_quantile(q)) as f64))
    }

    fn apply(&mut self, signal: Signal, diff: i64) {
        match signal {
            Signal::Error => self.errors += diff,
            Signal::Pageview => self.pageviews += diff,
            Signal::NewGroup => self.new_groups += diff,
            Signal::Vital { metric, value } => {
                self.vital = Some(metric);
                let n = self.vitals.entry(value).or_insert(0);
                *n += diff;
                if *n == 0 {
                    self.vitals.remove(&value);
                }
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct AlertViews {
    rules: HashMap<Symbol, RuleWindow>,
    /// Each rule's project, to forget a deleted project's rules.
    projects: HashMap<Symbol, Symbol>,
}

impl AlertViews {
    pub(crate) fn apply(&mut self, sample: &RuleSample, diff: i64) {
        let window = self.rules.entry(sample.rule).or_default();
        window.apply(sample.signal, diff);
        if window.errors == 0 && window.pageviews == 0 && window.new_groups == 0 && window.vitals.is_empty() {
            self.rules.remove(&sample.rule);
            self.projects.remove(&sample.rule);
        } else {
            self.projects.insert(sample.rule, sample.project);
        }
    }

    pub(crate) fn window(&self, rule: Symbol) -> RuleWindow {
        self.rules.get(&rule).cloned().unwrap_or_default()
    }

    pub(crate) fn forget(&mut self, project: Symbol) {
        let projects = &self.projects;
        self.rules.retain(|rule, _| projects.get(rule) != Some(&project));
        self.projects.retain(|_, p| *p != project);
    }
}
