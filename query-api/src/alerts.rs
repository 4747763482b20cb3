//! Alert channels and rules per the contract: members read them, admins
//! make, change, test and delete them, and every change is audited.
//! Secrets in channel configs never come back.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_alerting::engine::RuleStatus;
use sightline_alerting::rules::{AnomalySeries, Comparison, Metric, RuleDefinition, RuleFilters};
use sightline_alerting::{AlertRef, AlertState, Notification, ProjectRef, channel_config};
use sightline_store::{Channel, Delivery, Incident, NewDelivery, Rule};

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, authenticate};
use crate::error::ApiError;
use crate::ingest::VitalMetric;

/// Deliveries a channel may send per minute, unless it says otherwise.
const DEFAULT_RATE_LIMIT_PER_MIN: i64 = 30;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Teams,
    Jira,
    Github,
    Email,
}

impl ChannelKind {
    fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Jira => "jira",
            ChannelKind::Github => "github",
            ChannelKind::Email => "email",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    pub name: String,
    pub kind: ChannelKind,
    /// By kind: webhook `{url, secret}`, slack and teams `{webhook_url}`,
    /// jira `{base_url, email, api_token, project_key, issue_type?}`, github
    /// `{repo, token, api_url?}`, email `{to: [..]}`. On a change, secrets
    /// left out are kept.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Deliveries per minute at most (default 30); more wait for the next minute.
    #[serde(default)]
    pub rate_limit_per_min: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// The config without its secrets.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// The secret fields the config holds (never shown).
    pub secrets: Vec<String>,
    pub rate_limit_per_min: i64,
    /// Why deliveries stopped (a 4xx other than 408/429), until one succeeds.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
}

impl From<Channel> for ChannelView {
    fn from(c: Channel) -> Self {
        let (config, secrets) = channel_config::shown(&c.config);
        ChannelView {
            id: c.id,
            name: c.name,
            kind: c.kind,
            config,
            secrets,
            rate_limit_per_min: c.rate_limit_per_min,
            last_error: c.last_error,
            last_error_at: c.last_error_at,
            created_by: c.created_by,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub channel_id: String,
    pub rule_id: Option<String>,
    pub incident_id: Option<String>,
    /// `firing`, `resolved` or `test`.
    pub state: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let status = serde_json::to_value(&d.status).ok().and_then(|v| v.as_str().map(str::to_owned));
        DeliveryView {
            id: d.id,
            channel_id: d.channel_id,
            rule_id: d.rule_id,
            incident_id: d.incident_id,
            state: d.state,
            status: status.unwrap_or_default(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertBody {
    pub name: String,
    pub metric: Metric,
    /// The vital of `vital_p75` (the metric, or an anomaly rule's series).
    #[serde(default)]
    pub vital: Option<VitalMetric>,
    /// The series whose anomaly score an `anomaly` rule compares (a score
    /// of 3 is three robust standard deviations above the expected).
    #[serde(default)]
    pub series: Option<AnomalySeries>,
    pub comparison: Comparison,
    pub threshold: f64,
    /// The trailing window the value is computed over, in seconds (1 to 86400).
    pub window_s: i64,
    /// Fire only once the condition held this long (seconds).
    #[serde(default)]
    pub for_s: i64,
    /// After a resolve, stay quiet this long (seconds).
    #[serde(default)]
    pub cooldown_s: i64,
    #[serde(default)]
    pub filters: RuleFilters,
    /// The channels told of each state change.
    pub channels: Vec<String>,
    /// A muted rule does not fire (an open incident still resolves).
    #[serde(default)]
    pub muted: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: String,
    pub name: String,
    pub metric: Metric,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vital: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<AnomalySeries>,
    pub comparison: Comparison,
    pub threshold: f64,
    pub window_s: i64,
    pub for_s: i64,
    pub cooldown_s: i64,
    pub filters: RuleFilters,
    pub channels: Vec<String>,
    pub muted: bool,
    pub status: RuleStatus,
    /// The value now, when there is one.
    pub value: Option<f64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub opened_at: i64,
    pub opened_value: f64,
    pub resolved_at: Option<i64>,
    pub resolved_value: Option<f64>,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        IncidentView {
            id: i.id,
            opened_at: i.opened_at,
            opened_value: i.opened_value,
            resolved_at: i.resolved_at,
            resolved_value: i.resolved_value,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertHistory {
    /// Newest first.
    pub incidents: Vec<IncidentView>,
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// A rule body's definition, checked, as the store keeps it; every channel
/// it names must be the project's.
async fn stored_definition(state: &AppState, project: &str, body: &AlertBody) -> Result<serde_json::Value, ApiError> {
    let def = definition(body)?;
    check_channels(state, project, &body.channels).await?;
    serde_json::to_value(&def).map_err(|e| ApiError::internal(e.to_string()))
}

fn definition(body: &AlertBody) -> Result<RuleDefinition, ApiError> {
    let vital = body
        .vital
        .as_ref()
        .map(|v| serde_json::to_value(v).and_then(serde_json::from_value))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_value", "vital", "FID cannot be alerted on; use INP"))?;
    let def = RuleDefinition {
        metric: body.metric,
        vital,
        series: body.series,
        comparison: body.comparison,
        threshold: body.threshold,
        window_s: body.window_s,
        for_s: body.for_s,
        cooldown_s: body.cooldown_s,
        filters: body.filters.clone(),
    };
    def.check().map_err(|(field, message)| ApiError::bad_request("invalid_value", field, message))?;
    Ok(def)
}

async fn view(state: &AppState, rule: Rule) -> Result<AlertView, ApiError> {
    let def: RuleDefinition = serde_json::from_value(rule.definition.clone())
        .map_err(|e| ApiError::internal(format!("rule {} does not read: {e}", rule.id)))?;
    let (status, value) = state.alerting.status(&state.store, &state.views(), &rule, &def).await?;
    Ok(AlertView {
        vital: def.vital.and_then(|v| serde_json::to_value(v).ok()).and_then(|v| v.as_str().map(str::to_owned)),
        id: rule.id,
        name: rule.name,
        metric: def.metric,
        series: def.series,
        comparison: def.comparison,
        threshold: def.threshold,
        window_s: def.window_s,
        for_s: def.for_s,
        cooldown_s: def.cooldown_s,
        filters: def.filters,
        channels: rule.channels,
        muted: rule.muted,
        status,
        value,
        created_by: rule.created_by,
        created_at: rule.created_at,
        updated_at: rule.updated_at,
    })
}

/// Every channel named must be the project's.
async fn check_channels(state: &AppState, project: &str, channels: &[String]) -> Result<(), ApiError> {
    for (i, id) in channels.iter().enumerate() {
        if state.store.channel(project, id).await?.is_none() {
            return Err(ApiError::bad_request(
                "invalid_value",
                &format!("channels[{i}]"),
                format!("no channel `{id}` in this project"),
            ));
        }
    }
    Ok(())
}

fn rate_limit(body: &ChannelBody) -> Result<i64, ApiError> {
    let limit = body.rate_limit_per_min.unwrap_or(DEFAULT_RATE_LIMIT_PER_MIN);
    if !(1..=600).contains(&limit) {
        return Err(ApiError::bad_request("invalid_value", "rate_limit_per_min", "1 to 600"));
    }
    Ok(limit)
}

async fn checked_config(state: &AppState, body: &ChannelBody, config: &serde_json::Value) -> Result<(), ApiError> {
    channel_config::read(body.kind.as_str(), config, state.alerting.deny_private_egress)
        .await
        .map(|_| ())
        .map_err(|r| ApiError::bad_request("invalid_value", &r.field, r.message))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/channels", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = ChannelList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_channels(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ChannelList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let channels = state.store.channels(&id).await?.into_iter().map(ChannelView::from).collect();
    Ok(Json(ChannelList { channels }))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/channels", tag = "alerts", params(("id" = String, Path)),
    request_body = ChannelBody,
    responses((status = 201, body = ChannelView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_channel(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ChannelBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    checked_config(&state, &body, &body.config).await?;
    let limit = rate_limit(&body)?;
    let kind = body.kind.as_str();
    let channel = state.store.create_channel(&id, &body.name, kind, &body.config, limit, &principal.actor()).await?;
    let details = json!({ "name": channel.name, "kind": kind });
    let object = format!("channel:{}", channel.id);
    audit::record_by(&state, &principal, source, "channel_created", &object, Some(&id), details).await;
    Ok((StatusCode::CREATED, Json(channel.into())))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/channels/{channel_id}", tag = "alerts",
    params(("id" = String, Path), ("channel_id" = String, Path)), request_body = ChannelBody,
    responses((status = 200, body = ChannelView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_channel(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, channel_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<ChannelBody>, JsonRejection>,
) -> Result<Json<ChannelView>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let saved = state.store.channel(&id, &channel_id).await?.ok_or_else(|| missing("channel", &id, &channel_id))?;
    if saved.kind != body.kind.as_str() {
        return Err(ApiError::bad_request("invalid_value", "kind", "a channel's kind cannot change; make a new one"));
    }
    let config = channel_config::keep_secrets(&saved.config, &body.config);
    checked_config(&state, &body, &config).await?;
    let limit = rate_limit(&body)?;
    let channel = state
        .store
        .update_channel(&id, &channel_id, &body.name, &config, limit)
        .await?
        .ok_or_else(|| missing("channel", &id, &channel_id))?;
    let object = format!("channel:{channel_id}");
    audit::record_by(
        &state,
        &principal,
        source,
        "channel_changed",
        &object,
        Some(&id),
        json!({ "name": channel.name }),
    )
    .await;
    Ok(Json(channel.into()))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/channels/{channel_id}", tag = "alerts",
    params(("id" = String, Path), ("channel_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_channel(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, channel_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.delete_channel(&id, &channel_id).await? {
        return Err(missing("channel", &id, &channel_id));
    }
    // Rules keep no channel that is gone.
    for rule in state.store.rules(&id).await? {
        if rule.channels.contains(&channel_id) {
            let channels: Vec<String> = rule.channels.iter().filter(|c| **c != channel_id).cloned().collect();
            state.store.update_rule(&id, &rule.id, &rule.name, &rule.definition, &channels, rule.muted).await?;
            state.alerting.reload(&id, &rule.id).await?;
        }
    }
    let object = format!("channel:{channel_id}");
    audit::record_by(&state, &principal, source, "channel_deleted", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/channels/{channel_id}/test", tag = "alerts",
    params(("id" = String, Path), ("channel_id" = String, Path)),
    responses((status = 200, description = "The first attempt's outcome; a retryable failure keeps being retried.", body = DeliveryView),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn test_channel(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, channel_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DeliveryView>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let channel = state.store.channel(&id, &channel_id).await?.ok_or_else(|| missing("channel", &id, &channel_id))?;
    let project = state.store.get_project(&id).await?.ok_or_else(|| ApiError::not_found(format!("project `{id}`")))?;
    let now = sightline_alerting::now_ms();
    let notification = Notification {
        alert: AlertRef { id: "test".into(), name: format!("Test of {}", channel.name), metric: "error_count".into() },
        project: ProjectRef { id: project.id.clone(), name: project.name },
        state: AlertState::Firing,
        value: 1.0,
        threshold: 0.0,
        at: now,
        incident_id: format!("test-{now}"),
        link: state.alerting.public_url.clone(),
        test: true,
    };
    let delivery =
        NewDelivery { channel_id: channel.id.clone(), state: "test".into(), payload: notification.payload() };
    let delivery_id = state.store.queue_test_delivery(&id, &delivery).await?;
    let queued =
        state.store.delivery(&id, &delivery_id).await?.ok_or_else(|| missing("delivery", &id, &delivery_id))?;
    state.alerting.outbox.attempt(&queued).await?;
    let object = format!("channel:{channel_id}");
    audit::record_by(&state, &principal, source, "channel_tested", &object, Some(&id), json!({})).await;
    let attempted =
        state.store.delivery(&id, &delivery_id).await?.ok_or_else(|| missing("delivery", &id, &delivery_id))?;
    Ok(Json(attempted.into()))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/alerts", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = AlertList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_alerts(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<AlertList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let mut alerts = Vec::new();
    for rule in state.store.rules(&id).await? {
        alerts.push(view(&state, rule).await?);
    }
    Ok(Json(AlertList { alerts }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/alerts/{alert_id}", tag = "alerts",
    params(("id" = String, Path), ("alert_id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_alert(
    State(state): State<Arc<AppState>>,
    Path((id, alert_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<AlertView>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let rule = state.store.rule(&id, &alert_id).await?.ok_or_else(|| missing("alert", &id, &alert_id))?;
    Ok(Json(view(&state, rule).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/alerts", tag = "alerts", params(("id" = String, Path)),
    request_body = AlertBody,
    responses((status = 201, body = AlertView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_alert(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AlertBody>, JsonRejection>,
) -> Result<(StatusCode, Json<AlertView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let stored = stored_definition(&state, &id, &body).await?;
    let rule =
        state.store.create_rule(&id, &body.name, &stored, &body.channels, body.muted, &principal.actor()).await?;
    state.alerting.reload(&id, &rule.id).await?;
    let object = format!("alert:{}", rule.id);
    audit::record_by(
        &state,
        &principal,
        source,
        "alert_created",
        &object,
        Some(&id),
        json!({ "name": rule.name, "definition": stored }),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&state, rule).await?)))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/alerts/{alert_id}", tag = "alerts",
    params(("id" = String, Path), ("alert_id" = String, Path)), request_body = AlertBody,
    responses((status = 200, body = AlertView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_alert(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, alert_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<AlertBody>, JsonRejection>,
) -> Result<Json<AlertView>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let stored = stored_definition(&state, &id, &body).await?;
    let rule = state
        .store
        .update_rule(&id, &alert_id, &body.name, &stored, &body.channels, body.muted)
        .await?
        .ok_or_else(|| missing("alert", &id, &alert_id))?;
    state.alerting.reload(&id, &alert_id).await?;
    let object = format!("alert:{alert_id}");
    let details = json!({ "name": rule.name, "definition": stored, "muted": rule.muted });
    audit::record_by(&state, &principal, source, "alert_changed", &object, Some(&id), details).await;
    Ok(Json(view(&state, rule).await?))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/alerts/{alert_id}", tag = "alerts",
    params(("id" = String, Path), ("alert_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_alert(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, alert_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.delete_rule(&id, &alert_id).await? {
        return Err(missing("alert", &id, &alert_id));
    }
    state.alerting.reload(&id, &alert_id).await?;
    let object = format!("alert:{alert_id}");
    audit::record_by(&state, &principal, source, "alert_deleted", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/alerts/{alert_id}/history", tag = "alerts",
    params(("id" = String, Path), ("alert_id" = String, Path)),
    responses((status = 200, body = AlertHistory), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn alert_history(
    State(state): State<Arc<AppState>>,
    Path((id, alert_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<AlertHistory>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    state.store.rule(&id, &alert_id).await?.ok_or_else(|| missing("alert", &id, &alert_id))?;
    let incidents = state.store.incidents(&alert_id, 100).await?.into_iter().map(IncidentView::from).collect();
    let deliveries =
        state.store.rule_deliveries(&id, &alert_id, 200).await?.into_iter().map(DeliveryView::from).collect();
    Ok(Json(AlertHistory { incidents, deliveries }))
}

fn missing(what: &str, project: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("no {what} `{id}` in project `{project}`"))
}
