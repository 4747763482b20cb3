//! The alert engine: keeps the store's rules in the dataflow, reads each
//! rule's value after every tick that changed a rule window (and once a
//! second, for `for_s`, cooldowns and windows emptied by time), steps each
//! rule's state machine, and records firings and resolves as incidents with
//! their deliveries queued in the outbox, in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sightline_operators::RuleSpec;
use sightline_pipeline::Pipeline;
use sightline_store::{Incident, NewDelivery, Rule, Store, StoreError};
use tokio::sync::Mutex;

use crate::outbox::Outbox;
use crate::rules::{Metric, RuleDefinition, RuleState, Transition, step};
use crate::{AlertRef, AlertState, Notification, ProjectRef};

/// A rule as the engine runs it.
struct Running {
    rule: Rule,
    definition: RuleDefinition,
    project_name: String,
    /// The rule in the dataflow; `None` for an anomaly rule, which reads
    /// its series' score.
    spec: Option<RuleSpec>,
    state: RuleState,
    /// The open incident, while firing.
    incident: Option<Incident>,
    /// The rule is evaluated once the views have applied this tick, the
    /// one its (new) definition entered the dataflow at: before, its window
    /// would look empty.
    ready_after: u64,
}

/// Where a rule stands, for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// The condition does not hold.
    Ok,
    /// The condition holds, not yet for `for_s` (or in the cooldown, or muted).
    Pending,
    Firing,
    /// Not evaluated (yet): a metric this build does not evaluate, or the
    /// dataflow has not applied the rule yet.
    Unknown,
}

/// A rule's current value in `views`.
pub fn rule_value(views: &sightline_pipeline::ViewStore, rule: &Rule, definition: &RuleDefinition) -> Option<f64> {
    let score = definition.anomaly_series().and_then(|series| views.anomaly_score(&rule.project_id, series));
    definition.value(&views.rule_window(&rule.id), score)
}

pub struct AlertEngine {
    store: Store,
    pipeline: Arc<Pipeline>,
    outbox: Arc<Outbox>,
    /// The dashboard's address, for links in messages.
    public_url: String,
    rules: Mutex<HashMap<String, Running>>,
    /// Set once the archive is replayed: before, windows are half full.
    evaluating: tokio::sync::watch::Sender<bool>,
}

impl AlertEngine {
    /// Loads every rule and open incident and puts the rules into the
    /// dataflow (before the archive is replayed, so the replay fills their
    /// windows); evaluation waits for [`AlertEngine::start_evaluating`].
    pub async fn start(
        store: Store,
        pipeline: Arc<Pipeline>,
        outbox: Arc<Outbox>,
        public_url: String,
    ) -> Result<Arc<AlertEngine>, StoreError> {
        let evaluating = tokio::sync::watch::channel(false).0;
        let engine = Arc::new(AlertEngine { store, pipeline, outbox, public_url, rules: Mutex::default(), evaluating });
        let open: HashMap<String, Incident> =
            engine.store.open_incidents().await?.into_iter().map(|i| (i.rule_id.clone(), i)).collect();
        let mut added = Vec::new();
        {
            let mut rules = engine.rules.lock().await;
            for rule in engine.store.all_rules().await? {
                if let Some(mut running) = engine.running(rule).await? {
                    running.incident = open.get(&running.rule.id).cloned();
                    running.state.open_incident = running.incident.as_ref().map(|i| i.id.clone());
                    added.extend(running.spec.map(|spec| (spec, 1)));
                    rules.insert(running.rule.id.clone(), running);
                }
            }
        }
        engine.pipeline.update_rules(added);
        let evaluator = engine.clone();
        tokio::spawn(async move { evaluator.evaluate_for_ever().await });
        Ok(engine)
    }

    async fn running(&self, rule: Rule) -> Result<Option<Running>, StoreError> {
        let definition: RuleDefinition = match serde_json::from_value(rule.definition.clone()) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(rule = %rule.id, error = %e, "an alert rule's definition does not read; skipped");
                return Ok(None);
            }
        };
        let names = self.pipeline.views().names();
        let filter = |value: &Option<String>| value.as_deref().map(|v| names.intern(v));
        let spec = definition.watch().map(|watch| RuleSpec {
            rule: names.intern(&rule.id),
            project: names.intern(&rule.project_id),
            watch,
            path: filter(&definition.filters.path),
            release: filter(&definition.filters.release),
            device: filter(&definition.filters.device),
            window_s: definition.window_s,
        });
        let project_name =
            self.store.get_project(&rule.project_id).await?.map_or_else(|| rule.project_id.clone(), |p| p.name);
        let ready_after = crate::now_ms() as u64;
        Ok(Some(Running {
            rule,
            definition,
            project_name,
            spec,
            state: RuleState::default(),
            incident: None,
            ready_after,
        }))
    }

    /// Reloads one rule from the store after it was made, changed or
    /// deleted: the dataflow swaps its old definition for the new one, and
    /// an open incident stays open (and resolves when the new definition
    /// no longer holds).
    pub async fn reload(&self, project_id: &str, rule_id: &str) -> Result<(), StoreError> {
        let stored = self.store.rule(project_id, rule_id).await?;
        let mut rules = self.rules.lock().await;
        let old = rules.remove(rule_id);
        let mut changes = Vec::new();
        if let Some(spec) = old.as_ref().and_then(|old| old.spec) {
            changes.push((spec, -1));
        }
        if let Some(rule) = stored
            && let Some(mut running) = self.running(rule).await?
        {
            if let Some(old) = old {
                (running.state, running.incident) = (old.state, old.incident);
            }
            changes.extend(running.spec.map(|spec| (spec, 1)));
            rules.insert(rule_id.to_owned(), running);
        }
        self.pipeline.update_rules(changes);
        Ok(())
    }

    /// Brings the dataflow's rules in line with the store's: rules made,
    /// changed or deleted through another process (an API node of a
    /// cluster) are reloaded.
    pub async fn sync_with_store(&self) -> Result<(), StoreError> {
        let stored: HashMap<String, Rule> =
            self.store.all_rules().await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let stale: Vec<(String, String)> = {
            let rules = self.rules.lock().await;
            let changed = stored
                .values()
                .filter(|r| rules.get(&r.id).is_none_or(|running| running.rule.updated_at != r.updated_at))
                .map(|r| (r.project_id.clone(), r.id.clone()));
            let gone = rules
                .values()
                .filter(|running| !stored.contains_key(&running.rule.id))
                .map(|running| (running.rule.project_id.clone(), running.rule.id.clone()));
            changed.chain(gone).collect()
        };
        for (project_id, rule_id) in stale {
            self.reload(&project_id, &rule_id).await?;
        }
        Ok(())
    }

    /// Starts evaluating the rules: once the archive is replayed.
    pub fn start_evaluating(&self) {
        self.evaluating.send_replace(true);
    }

    async fn evaluate_for_ever(self: Arc<Self>) {
        let _ = self.evaluating.subscribe().wait_for(|ready| *ready).await;
        // The replayed batches reach the views after the replay hands them over.
        while !self.pipeline.caught_up() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut ticks = self.pipeline.views().watch_rules();
        loop {
            if let Err(e) = self.evaluate(crate::now_ms()).await {
                tracing::error!(error = %e, "alert evaluation could not reach the store");
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ticks.changed()).await;
        }
    }

    /// A rule's status and current value.
    pub async fn status(&self, rule_id: &str) -> (RuleStatus, Option<f64>) {
        let rules = self.rules.lock().await;
        let views = self.pipeline.views();
        match rules.get(rule_id) {
            Some(r) if views.applied_through() > r.ready_after => {
                let value = Self::value(views, r);
                let status = if r.incident.is_some() {
                    RuleStatus::Firing
                } else if r.state.crossed_since.is_some() {
                    RuleStatus::Pending
                } else {
                    RuleStatus::Ok
                };
                (status, value)
            }
            _ => (RuleStatus::Unknown, None),
        }
    }

    fn value(views: &sightline_pipeline::ViewStore, r: &Running) -> Option<f64> {
        rule_value(views, &r.rule, &r.definition)
    }

    /// Steps every rule with its current value.
    pub async fn evaluate(&self, now: i64) -> Result<(), StoreError> {
        let mut queued = false;
        let mut rules = self.rules.lock().await;
        let views = self.pipeline.views();
        for running in rules.values_mut().filter(|r| views.applied_through() > r.ready_after) {
            let value = Self::value(views, running);
            let Some(transition) = step(&running.definition, running.rule.muted, &mut running.state, value, now) else {
                continue;
            };
            let value = value.unwrap_or(0.0);
            match (transition, &running.incident) {
                (Transition::Fire, _) => {
                    let incident_id = Store::new_incident_id();
                    let deliveries = self.deliveries(running, AlertState::Firing, value, now, &incident_id);
                    let incident =
                        self.store.open_incident(&running.rule, &incident_id, now, value, &deliveries).await?;
                    running.state.open_incident = Some(incident.id.clone());
                    running.incident = Some(incident);
                    metrics::counter!("sightline_alert_transitions_total", "state" => "firing").increment(1);
                }
                (Transition::Resolve, Some(incident)) => {
                    let deliveries = self.deliveries(running, AlertState::Resolved, value, now, &incident.id);
                    self.store.resolve_incident(incident, now, value, &deliveries).await?;
                    running.state.open_incident = None;
                    running.state.last_resolved_at = Some(now);
                    running.incident = None;
                    metrics::counter!("sightline_alert_transitions_total", "state" => "resolved").increment(1);
                }
                (Transition::Resolve, None) => running.state.open_incident = None,
            }
            queued = true;
        }
        if queued {
            self.outbox.wake();
        }
        Ok(())
    }

    fn deliveries(
        &self,
        running: &Running,
        state: AlertState,
        value: f64,
        at: i64,
        incident_id: &str,
    ) -> Vec<NewDelivery> {
        let notification = Notification {
            alert: AlertRef {
                id: running.rule.id.clone(),
                name: running.rule.name.clone(),
                metric: running.definition.metric.as_str().to_owned(),
            },
            project: ProjectRef { id: running.rule.project_id.clone(), name: running.project_name.clone() },
            state,
            value,
            threshold: running.definition.threshold,
            at,
            incident_id: incident_id.to_owned(),
            link: self.link(running),
            test: false,
        };
        let state = match state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        running
            .rule
            .channels
            .iter()
            .map(|channel| NewDelivery {
                channel_id: channel.clone(),
                state: state.into(),
                payload: notification.payload(),
            })
            .collect()
    }

    /// The dashboard page of what a rule watches.
    fn link(&self, running: &Running) -> String {
        let page = match running.definition.metric {
            Metric::ErrorCount | Metric::ErrorRate | Metric::NewErrorGroup => "errors",
            Metric::VitalP75 => "performance",
            Metric::Pageviews | Metric::Anomaly => "",
        };
        format!("{}/{page}", self.public_url)
    }
}
