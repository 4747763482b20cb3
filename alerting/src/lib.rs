//! Alerting: rules and their states (`rules`, `engine`), what a channel is
//! told when a rule changes state and how each kind of channel is told it
//! (`channels`, `channel_config`), and the delivery outbox (`outbox`).

pub mod channel_config;
pub mod channels;
pub mod engine;
pub mod outbox;
pub mod rules;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sightline_pipeline::Pipeline;
use sightline_store::{Store, StoreError};

use crate::engine::AlertEngine;
use crate::outbox::{Outbox, OutboxSettings};

/// Alerting as the server runs it: the engine evaluating the rules and the
/// outbox delivering what they queue.
pub struct Alerting {
    /// The engine, in the process that runs the dataflow's rules (`serve`,
    /// or process 0 of a cluster's workers); `None` on an API node.
    pub engine: Option<Arc<AlertEngine>>,
    pub outbox: Arc<Outbox>,
    /// Refuse channel destinations on private networks.
    pub deny_private_egress: bool,
    /// The dashboard's address, for links in messages.
    pub public_url: String,
}

impl Alerting {
    /// Starts the outbox (sending what a previous run left pending) and the
    /// engine (with every stored rule in the dataflow; call
    /// `engine.start_evaluating()` once the archive is replayed).
    pub async fn start(
        store: Store,
        pipeline: Arc<Pipeline>,
        settings: OutboxSettings,
        public_url: String,
    ) -> Result<Alerting, StoreError> {
        let deny_private_egress = settings.deny_private_egress;
        let outbox = Arc::new(Outbox::new(store.clone(), settings));
        let running = outbox.clone();
        tokio::spawn(async move { running.run().await });
        let public_url = public_url.trim_end_matches('/').to_owned();
        let engine = AlertEngine::start(store, pipeline, outbox.clone(), public_url.clone()).await?;
        Ok(Alerting { engine: Some(engine), outbox, deny_private_egress, public_url })
    }

    /// Alerting on an API node of a cluster: no engine and no delivery
    /// loop (process 0 of the workers runs both; its engine picks up rule
    /// changes from the store), only test sends.
    pub fn without_engine(store: Store, settings: OutboxSettings, public_url: String) -> Alerting {
        let deny_private_egress = settings.deny_private_egress;
        let outbox = Arc::new(Outbox::new(store, settings));
        Alerting { engine: None, outbox, deny_private_egress, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// Tells the engine a rule was made, changed or deleted.
    pub async fn reload(&self, project_id: &str, rule_id: &str) -> Result<(), StoreError> {
        match &self.engine {
            Some(engine) => engine.reload(project_id, rule_id).await,
            None => Ok(()),
        }
    }

    /// A rule's status and current value. Without the engine (an API
    /// node): firing while it has an open incident, else ok once `views`
    /// hold a value for it.
    pub async fn status(
        &self,
        store: &Store,
        views: &sightline_pipeline::ViewStore,
        rule: &sightline_store::Rule,
        definition: &rules::RuleDefinition,
    ) -> Result<(engine::RuleStatus, Option<f64>), StoreError> {
        if let Some(engine) = &self.engine {
            return Ok(engine.status(&rule.id).await);
        }
        let value = engine::rule_value(views, rule, definition);
        let firing = store.incidents(&rule.id, 1).await?.first().is_some_and(|i| i.resolved_at.is_none());
        let status = match (firing, value) {
            (true, _) => engine::RuleStatus::Firing,
            (false, Some(_)) => engine::RuleStatus::Ok,
            (false, None) => engine::RuleStatus::Unknown,
        };
        Ok((status, value))
    }
}

/// An alert rule's state, as deliveries name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// One state change of an alert rule, as every channel is told it. The
/// webhook body is exactly [`Notification::payload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub alert: AlertRef,
    pub project: ProjectRef,
    pub state: AlertState,
    /// The watched value when the state changed.
    pub value: f64,
    pub threshold: f64,
    /// When the state changed, ms since the epoch.
    pub at: i64,
    /// The incident this change belongs to: a firing and the resolve that
    /// ends it share it (one Jira or GitHub issue per incident).
    pub incident_id: String,
    /// The dashboard page of what fired.
    pub link: String,
    /// A test message from the channel's test endpoint, not a real alert.
    pub test: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRef {
    pub id: String,
    pub name: String,
    /// `error_count`, `error_rate`, `new_error_group`, `vital_p75`,
    /// `pageviews` or `anomaly`.
    pub metric: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
}

impl Notification {
    /// The contract's delivery JSON: `{"alert": {"id", "name", "metric"},
    /// "project": {"id", "name"}, "state", "value", "threshold", "at"}`,
    /// plus `incident_id`, `link` and `test`.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a notification serializes")
    }

    /// A one-line summary every channel can use as its title or fallback.
    pub fn summary(&self) -> String {
        let state = match self.state {
            AlertState::Firing => "Firing",
            AlertState::Resolved => "Resolved",
        };
        let test = if self.test { "[test] " } else { "" };
        format!(
            "{test}{state}: {} ({} {} vs threshold {}) in {}",
            self.alert.name,
            self.alert.metric,
            format_value(self.value),
            format_value(self.threshold),
            self.project.name
        )
    }
}

/// The wall clock in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A number as people read it: integers without a fraction, others with up
/// to four significant decimals.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
