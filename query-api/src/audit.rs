//! The audit log over HTTP: recording what callers change, reading it, and
//! verifying its hash chain.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sightline_store::{AuditEntry, ChainCheck, NewAuditEntry};

use crate::AppState;
use crate::auth::{AuditScope, Principal, authenticate};
use crate::error::ApiError;
use crate::telemetry;

/// Records a change. The change is made by then, so a failure to record it
/// is logged and counted (`sightline_audit_failures_total`), not answered.
pub async fn record(
    state: &AppState,
    actor: &str,
    source: IpAddr,
    action: &str,
    object: &str,
    project_id: Option<&str>,
    details: serde_json::Value,
) {
    let (source_ip, details) = (source.to_string(), details.to_string());
    let entry = NewAuditEntry { actor, action, object, project_id, source_ip: &source_ip, details: &details };
    if let Err(e) = state.store.append_audit(entry).await {
        metrics::counter!(telemetry::AUDIT_FAILURES).increment(1);
        tracing::error!(error = %e, action, object, "could not record an audit entry");
    }
}

/// A change made by an authenticated caller.
pub async fn record_by(
    state: &AppState,
    principal: &Principal,
    source: IpAddr,
    action: &str,
    object: &str,
    project_id: Option<&str>,
    details: serde_json::Value,
) {
    record(state, &principal.actor(), source, action, object, project_id, details).await;
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Entries older than this sequence number (the next page).
    pub before: Option<i64>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<AuditEntry>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "accounts", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_value", "limit", "`limit` must be 1 to 1000"));
    }
    let projects = match principal.audit_scope() {
        AuditScope::All => None,
        AuditScope::Projects(projects) if !projects.is_empty() => Some(projects),
        AuditScope::Projects(_) => return Err(ApiError::forbidden("the audit log is for admins")),
    };
    let entries = state.store.audit_entries(projects.as_deref(), params.before, limit).await?;
    Ok(Json(AuditPage { entries }))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "accounts",
    responses((status = 200, body = Object, description = "`{entries, broken_at, head_hash}`: `broken_at` is the first entry whose hash or link does not hold, null if none"),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn verify_audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ChainCheck>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    if !matches!(principal.audit_scope(), AuditScope::All) {
        return Err(ApiError::forbidden("verifying the whole audit log needs the admin token or an owner"));
    }
    let check = state.store.verify_audit_chain().await?;
    if let Some(seq) = check.broken_at {
        tracing::error!(seq, "the audit log's hash chain is broken");
    }
    Ok(Json(check))
}
