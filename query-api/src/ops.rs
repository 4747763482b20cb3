//! Health, metrics and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::AppState;
use crate::telemetry;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` once the pipeline accepts events, `starting` before.
    pub status: &'static str,
    /// `embedded` or `nats`.
    pub bus: &'static str,
    /// Whether every accepted batch is reflected in the views (on an API
    /// node of a cluster: whether its views are of a generation of the
    /// workers that has replayed everything, and fresh).
    pub caught_up: bool,
    /// Milliseconds since the views applied their last tick (about a
    /// second at most while the dataflow runs).
    pub views_age_ms: u64,
    /// The views are older than 5 s: on an API node, the workers are down
    /// or restarting and the answers are the last views they sent.
    pub stale: bool,
    /// On an API node: the generation of the workers' views it serves (the
    /// start of their process 0, ms); it changes once they have restarted
    /// and replayed everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, description = "still replaying the archive", body = Health)))]
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let ready = state.is_ready();
    let views_age_ms = state.dataflow.views_age_ms();
    let health = Health {
        status: if ready { "ok" } else { "starting" },
        bus: state.bus.kind(),
        caught_up: ready && state.dataflow.caught_up(),
        views_age_ms,
        stale: views_age_ms > crate::STALE_AFTER_MS,
        generation: state.dataflow.generation(),
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(health))
}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    metrics::gauge!(telemetry::BUS_LAG_BATCHES).set(state.dataflow.queued_batches() as f64);
    let lag_ms = state.dataflow.views_age_ms();
    let freshness = if state.dataflow.caught_up() { 0.0 } else { lag_ms as f64 / 1000.0 };
    metrics::gauge!(telemetry::VIEW_FRESHNESS_SECONDS).set(freshness);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sightline", description = "Real-time web analytics, error tracking and performance monitoring. Contract v1."),
    paths(
        crate::ingest::ingest,
        crate::projects::create_project,
        crate::projects::list_projects,
        crate::projects::get_project,
        crate::projects::update_project,
        crate::projects::delete_project,
        crate::ingest::ingest_preflight,
        crate::projects::create_key,
        crate::keys::list_secret_keys,
        crate::keys::revoke_secret_key,
        crate::keys::list_ingest_keys,
        crate::keys::create_ingest_key,
        crate::keys::update_ingest_key,
        crate::keys::revoke_ingest_key,
        crate::accounts::create_user,
        crate::accounts::list_users,
        crate::accounts::login,
        crate::accounts::logout,
        crate::accounts::current_session,
        crate::accounts::change_password,
        crate::accounts::list_sessions,
        crate::accounts::revoke_sessions,
        crate::accounts::list_members,
        crate::accounts::set_member,
        crate::accounts::remove_member,
        crate::audit::list_audit,
        crate::audit::verify_audit,
        crate::segments::list_segments,
        crate::segments::create_segment,
        crate::segments::delete_segment,
        crate::alerts::list_channels,
        crate::alerts::create_channel,
        crate::alerts::update_channel,
        crate::alerts::delete_channel,
        crate::alerts::test_channel,
        crate::alerts::list_alerts,
        crate::alerts::get_alert,
        crate::alerts::create_alert,
        crate::alerts::update_alert,
        crate::alerts::delete_alert,
        crate::alerts::alert_history,
        crate::anomalies::anomalies,
        crate::dashboards::list_dashboards,
        crate::dashboards::get_dashboard,
        crate::dashboards::create_dashboard,
        crate::dashboards::update_dashboard,
        crate::dashboards::delete_dashboard,
        crate::queries::pageviews,
        crate::queries::errors,
        crate::queries::error_group,
        crate::queries::error_rate,
        crate::queries::events,
        crate::queries::sessions_summary,
        crate::queries::breakdown,
        crate::queries::current_visitors,
        crate::queries::vitals,
        crate::queries::vitals_by_page,
        crate::sourcemaps::upload,
        crate::queries::live,
        healthz,
        metrics,
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// `bearer`: the admin token or a secret key. `session`: the cookie login
/// sets; changes made with it carry `X-CSRF-Token`.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "set by POST /api/v1/auth/login; changes also send X-CSRF-Token",
            ))),
        );
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses((status = 200, description = "this document")))]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each operation has its own id (clients are generated from them).
    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operation ids");
    }

    /// The SDKs' types are generated from `sdk/openapi.json`: it must be
    /// this server's document.
    #[test]
    fn the_sdks_copy_of_the_openapi_document_is_current() {
        let current = ApiDoc::openapi().to_pretty_json().unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/openapi.json");
        let copy = std::fs::read_to_string(path).unwrap();
        assert!(
            copy.trim_end() == current.trim_end(),
            "sdk/openapi.json is stale: run `cargo run -p sightline -- openapi > sdk/openapi.json && npm run generate --prefix sdk`"
        );
    }
}
