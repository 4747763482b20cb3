//! The HTTP face of Sightline: ingest, queries, the live feed, health,
//! metrics and the OpenAPI document, as one axum router over [`AppState`].
//!
//! Handlers only translate between HTTP and the crates below: the model
//! validates, the bus makes batches durable, the view store answers.

pub mod accounts;
pub mod alerts;
pub mod anomalies;
pub mod audit;
pub mod auth;
pub mod dashboards;
pub mod error;
pub mod ingest;
pub mod keys;
pub mod ops;
pub mod projects;
pub mod queries;
pub mod segments;
pub mod sourcemaps;
pub mod telemetry;
pub mod throttle;
pub mod web_assets;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use sightline_connectors::{Bus, SourceMapStore};
use sightline_errors::RecentStacks;
use sightline_pipeline::{Pipeline, Replica, ViewStore};
use sightline_store::Store;

/// Memory for the groups of recent error stacks.
const RECENT_STACKS_BYTES: usize = 8 * 1024 * 1024;

pub use auth::AdminToken;
pub use ops::ApiDoc;

/// Who may call besides users: the bootstrap admin token, and the proxies
/// whose `X-Forwarded-For` names the client.
pub struct Access {
    pub admin_token: Option<AdminToken>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Where this node's views come from.
pub enum Dataflow {
    /// The pipeline runs in this process (`sightline serve`).
    Local(Arc<Pipeline>),
    /// An API node of a cluster: views fed by the workers' view feed.
    Replica(Arc<Replica>),
}

/// Views older than this are reported stale by `/healthz`.
pub const STALE_AFTER_MS: u64 = 5_000;

impl Dataflow {
    /// The views to answer from.
    pub fn views(&self) -> Arc<ViewStore> {
        match self {
            Dataflow::Local(pipeline) => pipeline.views().clone(),
            Dataflow::Replica(replica) => replica.views(),
        }
    }

    /// Whether the views reflect everything accepted (locally), or are of a
    /// generation of the workers that replayed everything and is fresh
    /// (a replica).
    pub fn caught_up(&self) -> bool {
        match self {
            Dataflow::Local(pipeline) => pipeline.caught_up(),
            Dataflow::Replica(replica) => replica.is_ready() && self.views_age_ms() < STALE_AFTER_MS,
        }
    }

    /// Milliseconds since the last tick the views applied.
    pub fn views_age_ms(&self) -> u64 {
        sightline_pipeline::now_ms().saturating_sub(self.views().applied_through())
    }

    /// The generation of the workers' views a replica serves.
    pub fn generation(&self) -> Option<u64> {
        match self {
            Dataflow::Local(_) => None,
            Dataflow::Replica(replica) => replica.generation(),
        }
    }

    /// Batches waiting for a worker of this process (none on an API node:
    /// JetStream holds them).
    pub fn queued_batches(&self) -> i64 {
        match self {
            Dataflow::Local(pipeline) => pipeline.queued_batches(),
            Dataflow::Replica(_) => 0,
        }
    }

    /// Drops a deleted project's data.
    pub fn forget_project(&self, project_id: &str) {
        match self {
            Dataflow::Local(pipeline) => pipeline.forget_project(project_id),
            Dataflow::Replica(replica) => replica.forget_project(project_id),
        }
    }
}

/// Everything a handler may use.
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub dataflow: Dataflow,
    pub admin_token: Option<AdminToken>,
    pub metrics: PrometheusHandle,
    pub ingest_keys: ingest::IngestKeyCache,
    pub sourcemaps: SourceMapStore,
    /// The groups error processing decided for recent stacks.
    pub recent_stacks: RecentStacks,
    pub user_agents: sightline_model::UserAgentCache,
    /// Failed logins per account and address.
    pub login_throttle: throttle::LoginThrottle,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Alert rules' engine and the delivery outbox.
    pub alerting: sightline_alerting::Alerting,
    ready: AtomicBool,
    /// Flips to `true` when the server shuts down; long-lived responses end.
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub fn new(
        store: Store,
        bus: Bus,
        dataflow: Dataflow,
        access: Access,
        metrics: PrometheusHandle,
        sourcemaps: SourceMapStore,
        alerting: sightline_alerting::Alerting,
    ) -> Arc<AppState> {
        let Access { admin_token, trusted_proxies } = access;
        Arc::new(AppState {
            store,
            bus,
            dataflow,
            admin_token,
            metrics,
            ingest_keys: Default::default(),
            sourcemaps,
            recent_stacks: RecentStacks::new(RECENT_STACKS_BYTES),
            user_agents: Default::default(),
            login_throttle: Default::default(),
            trusted_proxies,
            alerting,
            ready: AtomicBool::new(false),
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// Called once the archive is replayed into the pipeline.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Ends long-lived responses (the live feed) so a graceful stop finishes.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`AppState::begin_shutdown`] was called.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The views to answer from.
    pub fn views(&self) -> Arc<ViewStore> {
        self.dataflow.views()
    }
}

/// The whole HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    // Routes a user's session may authenticate, so changes need the CSRF
    // token; ingest authenticates by its key only, ops need nothing.
    let authenticated = Router::new()
        .route("/api/v1/projects", post(projects::create_project).get(projects::list_projects))
        .route(
            "/api/v1/projects/{id}",
            get(projects::get_project).patch(projects::update_project).delete(projects::delete_project),
        )
        .route("/api/v1/projects/{id}/keys", post(projects::create_key).get(keys::list_secret_keys))
        .route("/api/v1/projects/{id}/keys/{key_id}", delete(keys::revoke_secret_key))
        .route("/api/v1/projects/{id}/ingest-keys", get(keys::list_ingest_keys).post(keys::create_ingest_key))
        .route(
            "/api/v1/projects/{id}/ingest-keys/{key_id}",
            patch(keys::update_ingest_key).delete(keys::revoke_ingest_key),
        )
        .route("/api/v1/projects/{id}/members", get(accounts::list_members))
        .route("/api/v1/projects/{id}/members/{user_id}", put(accounts::set_member).delete(accounts::remove_member))
        .route("/api/v1/users", post(accounts::create_user).get(accounts::list_users))
        .route("/api/v1/auth/login", post(accounts::login))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route("/api/v1/auth/session", get(accounts::current_session))
        .route("/api/v1/auth/password", post(accounts::change_password))
        .route("/api/v1/auth/sessions", get(accounts::list_sessions))
        .route("/api/v1/auth/sessions/revoke", post(accounts::revoke_sessions))
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/audit/verify", get(audit::verify_audit))
        .route("/api/v1/projects/{id}/segments", get(segments::list_segments).post(segments::create_segment))
        .route("/api/v1/projects/{id}/segments/{segment_id}", delete(segments::delete_segment))
        .route("/api/v1/projects/{id}/channels", get(alerts::list_channels).post(alerts::create_channel))
        .route(
            "/api/v1/projects/{id}/channels/{channel_id}",
            put(alerts::update_channel).delete(alerts::delete_channel),
        )
        .route("/api/v1/projects/{id}/channels/{channel_id}/test", post(alerts::test_channel))
        .route("/api/v1/projects/{id}/alerts", get(alerts::list_alerts).post(alerts::create_alert))
        .route(
            "/api/v1/projects/{id}/alerts/{alert_id}",
            get(alerts::get_alert).put(alerts::update_alert).delete(alerts::delete_alert),
        )
        .route("/api/v1/projects/{id}/alerts/{alert_id}/history", get(alerts::alert_history))
        .route("/api/v1/projects/{id}/anomalies", get(anomalies::anomalies))
        .route("/api/v1/projects/{id}/dashboards", get(dashboards::list_dashboards).post(dashboards::create_dashboard))
        .route(
            "/api/v1/projects/{id}/dashboards/{dashboard_id}",
            get(dashboards::get_dashboard).put(dashboards::update_dashboard).delete(dashboards::delete_dashboard),
        )
        .route("/api/v1/projects/{id}/pageviews", get(queries::pageviews))
        .route(
            "/api/v1/projects/{id}/sourcemaps",
            post(sourcemaps::upload).layer(DefaultBodyLimit::max(sightline_connectors::sourcemaps::MAX_MAP_BYTES)),
        )
        .route("/api/v1/projects/{id}/errors", get(queries::errors))
        .route("/api/v1/projects/{id}/errors/{fingerprint}", get(queries::error_group))
        .route("/api/v1/projects/{id}/error-rate", get(queries::error_rate))
        .route("/api/v1/projects/{id}/events", get(queries::events))
        .route("/api/v1/projects/{id}/sessions/summary", get(queries::sessions_summary))
        .route("/api/v1/projects/{id}/breakdown", get(queries::breakdown))
        .route("/api/v1/projects/{id}/visitors/current", get(queries::current_visitors))
        .route("/api/v1/projects/{id}/vitals", get(queries::vitals))
        .route("/api/v1/projects/{id}/vitals/pages", get(queries::vitals_by_page))
        .route("/api/v1/projects/{id}/live", get(queries::live))
        .layer(axum::middleware::from_fn(auth::csrf_guard));
    Router::new()
        .route(
            "/api/v1/ingest",
            post(ingest::ingest).options(ingest::ingest_preflight).layer(DefaultBodyLimit::disable()),
        )
        .merge(authenticated)
        .route("/api/v1/openapi.json", get(ops::openapi))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(get(web_assets::serve))
        .with_state(state)
}
