//! `POST /api/v1/ingest`: validate, enrich, make durable, then answer 202.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use sightline_connectors::BatchMaps;
use sightline_model::limits::{MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH};
use sightline_model::wire::WireValue;
use sightline_model::{
    BodyError, Encoding, Envelope, Event, EventKind, Format, IngestContext, decode_body, enrich, validate_event,
};
use sightline_store::{IngestGrant, Project};

use crate::AppState;
use crate::error::ApiError;
use crate::telemetry;

/// More batches than this waiting for a worker and the ingest answers 429
/// with `Retry-After`: the views are falling behind, and holding more would
/// only grow memory and the event-to-view delay (about a second of work at
/// the measured pipeline rate, see bench/README.md).
pub const MAX_QUEUED_BATCHES: i64 = 1_000;
/// How long a looked-up ingest key is trusted before it is looked up again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long an unknown key is remembered as unknown: a client retrying with
/// a wrong key (or a flood of made-up ones) does not reach the store on
/// every request, and a key created since is valid within seconds.
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(5);

/// Ingest keys recently seen, known or not, so the hot path does not query
/// the store.
#[derive(Default)]
pub struct IngestKeyCache(RwLock<HashMap<String, KeyLookup>>);

/// A key's grant (`None`: no such active key) and when it was looked up.
type KeyLookup = (Option<Arc<ActiveKey>>, Instant);

/// How often a key's last use is written to the store.
const LAST_USE_EVERY_MS: i64 = 60_000;

/// An active ingest key as ingest uses it: its project, its rate limiter,
/// and when its last use was written.
pub struct ActiveKey {
    pub key_id: String,
    pub project: Project,
    rate_limit_per_s: Option<i64>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    last_use_written: AtomicI64,
}

impl ActiveKey {
    fn new(grant: IngestGrant, before: Option<&ActiveKey>) -> ActiveKey {
        // A refreshed key keeps its limiter (and so its spent budget) while
        // its limit is the same.
        let kept = before.filter(|b| b.key_id == grant.key_id && b.rate_limit_per_s == grant.rate_limit_per_s);
        let limiter = match kept {
            Some(before) => before.limiter.clone(),
            None => grant.rate_limit_per_s.and_then(|rate| {
                let rate = NonZeroU32::new(u32::try_from(rate).ok()?)?;
                // A whole batch always fits in the burst.
                let burst = rate.max(NonZeroU32::new(MAX_EVENTS_PER_BATCH as u32)?);
                Some(Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))))
            }),
        };
        ActiveKey {
            key_id: grant.key_id,
            project: grant.project,
            rate_limit_per_s: grant.rate_limit_per_s,
            limiter,
            last_use_written: AtomicI64::new(kept.map_or(0, |b| b.last_use_written.load(Ordering::Relaxed))),
        }
    }

    /// Takes `events` from the key's budget, or says in how many seconds
    /// to retry.
    fn admit(&self, events: usize) -> Result<(), u64> {
        let (Some(limiter), Some(n)) = (&self.limiter, NonZeroU32::new(events.min(u32::MAX as usize) as u32)) else {
            return Ok(());
        };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
            // More than the burst: never fits (batches are capped below it).
            Err(_) => Err(1),
        }
    }

    /// Writes the key's last use, at most once a minute, off the request.
    fn used(&self, state: &AppState, now_ms: i64) {
        let written = self.last_use_written.load(Ordering::Relaxed);
        if now_ms - written < LAST_USE_EVERY_MS
            || self.last_use_written.compare_exchange(written, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let (store, key_id) = (state.store.clone(), self.key_id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_ingest_key(&key_id, now_ms).await {
                tracing::warn!(error = %e, key = %key_id, "could not record an ingest key's last use");
            }
        });
    }
}

impl IngestKeyCache {
    async fn active(&self, state: &AppState, key: &str) -> Result<Option<Arc<ActiveKey>>, ApiError> {
        let before = self.0.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
        if let Some((active, at)) = &before
            && at.elapsed() < if active.is_some() { KEY_CACHE_TTL } else { UNKNOWN_KEY_TTL }
        {
            return Ok(active.clone());
        }
        let grant = state.store.ingest_grant(key).await?;
        telemetry::key_looked_up(grant.is_some());
        let before = before.and_then(|(active, _)| active);
        let active = grant.map(|grant| Arc::new(ActiveKey::new(grant, before.as_deref())));
        let mut cache = self.0.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(key.to_owned(), (active.clone(), Instant::now()));
        Ok(active)
    }

    /// Forgets a project's keys, so their next request reads the store
    /// (after a change to a key or the project). Other API nodes see the
    /// change within a minute.
    pub fn forget_project(&self, project_id: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (active, _)| active.as_ref().is_none_or(|a| a.project.id != project_id));
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IngestParams {
    /// The project's public ingest key, for clients that cannot set headers
    /// (`navigator.sendBeacon`).
    pub key: Option<String>,
}

/// One event that was not accepted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RejectedEvent {
    pub index: usize,
    pub code: String,
    pub field: String,
    pub message: String,
}

/// The answer to an ingest request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: Vec<RejectedEvent>,
}

/// The ingest body: `{"events": [...]}` as JSON or MessagePack.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct IngestBatch {
    /// Up to 1000 events.
    pub events: Vec<IngestEvent>,
}

/// One event as a client sends it: the fields every event has, and those
/// of its `type`. This describes the wire format for the OpenAPI document
/// (the SDKs' types are generated from it); events are read by
/// `sightline_model::validate_event`, and a test checks that an event of
/// each kind built from these types passes it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(flatten)]
    pub kind: IngestEventKind,
}

/// What every event carries.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventCommon {
    /// Client time, ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// The visitor: stable across visits.
    pub anonymous_id: String,
    /// The server splits sessions after 30 idle minutes when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The page's URL; the path is derived from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The app's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

/// The fields of each kind of event, by `type`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IngestEventKind {
    Pageview {
        #[serde(skip_serializing_if = "Option::is_none")]
        referrer: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    Event {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        props: Option<std::collections::BTreeMap<String, EventPropValue>>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// The raw `Error.stack` string; parsed by the server.
        #[serde(skip_serializing_if = "Option::is_none")]
        stack: Option<String>,
        /// Instead of `stack`: frames the client parsed, innermost first.
        #[serde(skip_serializing_if = "Option::is_none")]
        frames: Option<Vec<ClientFrame>>,
        /// Overrides grouping: events with the same fingerprint are one issue.
        #[serde(skip_serializing_if = "Option::is_none")]
        fingerprint: Option<Vec<String>>,
    },
    Vital {
        name: VitalMetric,
        /// Milliseconds; CLS is unitless.
        value: f64,
    },
}

/// A custom event property's value.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EventPropValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// A stack frame a client parsed itself.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub enum VitalMetric {
    #[serde(rename = "LCP")]
    Lcp,
    #[serde(rename = "INP")]
    Inp,
    #[serde(rename = "CLS")]
    Cls,
    #[serde(rename = "FCP")]
    Fcp,
    #[serde(rename = "TTFB")]
    Ttfb,
    #[serde(rename = "FID")]
    Fid,
}

#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    tag = "ingest",
    params(IngestParams, ("X-Sightline-Key" = Option<String>, Header, description = "the project's ingest key")),
    request_body(content = IngestBatch, description = "JSON, or the same as MessagePack with `Content-Type: application/msgpack`; gzip accepted"),
    responses(
        (status = 202, description = "valid events accepted, the rest listed", body = IngestAnswer),
        (status = 400, description = "not a batch", body = crate::error::ErrorBody),
        (status = 401, description = "missing or unknown ingest key", body = crate::error::ErrorBody),
        (status = 403, description = "a browser `Origin` the project does not list", body = crate::error::ErrorBody),
        (status = 413, description = "body or batch too large", body = crate::error::ErrorBody),
        (status = 415, description = "unsupported Content-Type or Content-Encoding", body = crate::error::ErrorBody),
        (status = 429, description = "the pipeline is behind (`rate_limited`) or the key is over its events per second (`key_rate_limited`); retry after `Retry-After` seconds", body = crate::error::ErrorBody),
    )
)]
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let answer = ingest_batch(&state, params, &headers, body).await;
    let refused_origin = matches!(&answer, Err(e) if e.code == ORIGIN_NOT_ALLOWED);
    let mut response = answer.into_response();
    if let Some(origin) = origin.filter(|_| !refused_origin) {
        allow_origin(response.headers_mut(), origin);
    }
    response
}

#[utoipa::path(
    options,
    path = "/api/v1/ingest",
    tag = "ingest",
    params(IngestParams),
    responses(
        (status = 204, description = "CORS preflight: the origin may send (any origin, unless the `key` in the query names a project that lists its origins)"),
        (status = 403, description = "the project of `key` does not list this origin", body = crate::error::ErrorBody),
    )
)]
pub async fn ingest_preflight(
    State(state): State<Arc<AppState>>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).cloned() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // A preflight carries no headers of the request, so only a key in the
    // query names the project; without one the request itself is checked.
    if let Some(key) = params.key.filter(|k| !k.is_empty())
        && let Some(active) = state.ingest_keys.active(&state, &key).await?
    {
        check_origin(&active.project, &headers)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow_origin(headers, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, content-encoding, x-sightline-key"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    Ok(response)
}

/// The error code of an ingest refused for its `Origin`.
const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// Refuses a browser request from an origin the project does not list.
/// Requests without `Origin` (servers, mobile apps, curl) are not browsers'.
fn check_origin(project: &Project, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if project.allowed_origins.is_empty() {
        return Ok(());
    }
    let listed = origin
        .to_str()
        .ok()
        .and_then(|o| sightline_store::normalize_origin(o).ok())
        .is_some_and(|o| project.allowed_origins.contains(&o));
    if listed {
        return Ok(());
    }
    telemetry::refused(ORIGIN_NOT_ALLOWED);
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ORIGIN_NOT_ALLOWED,
        "this project does not accept events from this origin",
    )
    .field("origin"))
}

async fn ingest_batch(
    state: &AppState,
    params: IngestParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let received_at = sightline_pipeline::now_ms() as i64;
    let key = headers
        .get("x-sightline-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(params.key)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        telemetry::refused("missing_key");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_key",
            "send the ingest key in `X-Sightline-Key` or `?key=`",
        )
        .field("key"));
    };
    let Some(active) = state.ingest_keys.active(state, &key).await? else {
        telemetry::refused("invalid_key");
        return Err(
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_key", "unknown or revoked ingest key").field("key")
        );
    };
    let project = &active.project;
    check_origin(project, headers)?;
    if !pipeline_has_room(state).await {
        telemetry::refused("rate_limited");
        return Err(ApiError {
            retry_after_s: Some(1),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "the pipeline is behind; retry shortly")
        });
    }
    let header_str = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    let format = Format::from_content_type(header_str(header::CONTENT_TYPE)).ok_or_else(|| {
        telemetry::refused("unsupported_media_type");
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "use application/json or application/msgpack",
        )
        .field("content-type")
    })?;
    let encoding = Encoding::from_content_encoding(header_str(header::CONTENT_ENCODING)).ok_or_else(|| {
        telemetry::refused("unsupported_encoding");
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding", "use gzip or no Content-Encoding")
            .field("content-encoding")
    })?;
    let bytes = read_capped(body).await?;
    let mut batch = decode_body(&bytes, format, encoding).map_err(body_error)?;
    if let Err(retry_after_s) = active.admit(batch.events.len()) {
        telemetry::refused("key_rate_limited");
        return Err(ApiError {
            retry_after_s: Some(retry_after_s),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "key_rate_limited",
                "this ingest key sends more events per second than its limit",
            )
            .field("key")
        });
    }
    active.used(state, received_at);

    let ctx =
        IngestContext::new(project.id.clone(), received_at, state.user_agents.parse(header_str(header::USER_AGENT)));
    let (events, rejected) = accept_events(state, &mut batch.events, &ctx);
    // The body and what is left of its decoding go now, not after the wait
    // for the bus: hundreds of requests waiting at once each held them.
    drop((batch, bytes));
    let accepted = events.len();
    if accepted > 0 {
        let mut by_type = [0; EventKind::TYPE_NAMES.len()];
        for e in &events {
            by_type[e.kind.type_index()] += 1;
        }
        let envelope = Envelope { batch_id: uuid::Uuid::now_v7(), project_id: project.id.clone(), received_at, events };
        state.bus.publish(envelope).await.map_err(|e| {
            telemetry::rejected("bus_unavailable", accepted as u64);
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "bus_unavailable", format!("could not store the batch: {e}"))
        })?;
        for (kind, n) in EventKind::TYPE_NAMES.into_iter().zip(by_type).filter(|(_, n)| *n > 0) {
            metrics::counter!(telemetry::EVENTS_ACCEPTED, "type" => kind).increment(n);
        }
    }
    Ok((StatusCode::ACCEPTED, Json(IngestAnswer { accepted, rejected })))
}

/// The batch's valid events, enriched, error events grouped; and what was
/// wrong with the others.
fn accept_events(state: &AppState, values: &mut [WireValue], ctx: &IngestContext) -> (Vec<Event>, Vec<RejectedEvent>) {
    // Read before any map is: should a map be uploaded meanwhile, groups
    // remembered from this batch are already stale and never used.
    let maps_generation = state.sourcemaps.generation();
    let batch_maps = BatchMaps::new(&state.sourcemaps, &ctx.project_id);
    let mut events = Vec::with_capacity(values.len());
    let mut rejected = Vec::new();
    for (index, value) in values.iter_mut().enumerate() {
        match validate_event(value) {
            Ok(event) => {
                let mut event = enrich(event, ctx);
                if let EventKind::Error { .. } = event.kind {
                    let release = event.release.clone();
                    let maps = |url: &str| release.as_deref().and_then(|r| batch_maps.get(r, url));
                    state.recent_stacks.group_error(&mut event, &maps, maps_generation);
                }
                events.push(event);
            }
            Err(r) => {
                telemetry::rejected(r.code, 1);
                rejected.push(RejectedEvent { index, code: r.code.to_owned(), field: r.field, message: r.message });
            }
        }
    }
    (events, rejected)
}

/// How long a request waits for room in the pipeline before it is refused.
const MAX_QUEUE_WAIT: Duration = Duration::from_millis(500);

/// Whether the pipeline can take another batch, waiting a little for room:
/// a short wait smooths a burst at less cost than a refusal and a retry.
async fn pipeline_has_room(state: &AppState) -> bool {
    let deadline = Instant::now() + MAX_QUEUE_WAIT;
    while state.dataflow.queued_batches() > MAX_QUEUED_BATCHES {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Past this much of an oversized body, the connection is dropped instead
/// of reading on.
const MAX_DISCARD_BYTES: usize = 64 * 1024 * 1024;

/// Reads the body, keeping at most [`MAX_BODY_BYTES`]. The rest of an
/// oversized body is read and thrown away (up to [`MAX_DISCARD_BYTES`]) so
/// the client gets its 413 instead of a broken pipe.
async fn read_capped(body: Body) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request("invalid_body", "body", format!("reading the body failed: {e}")))?;
        seen += chunk.len();
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        } else if seen > MAX_DISCARD_BYTES {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(body_error(BodyError::TooLarge { limit: MAX_BODY_BYTES, decompressed: false }));
    }
    Ok(kept.freeze())
}

fn body_error(e: BodyError) -> ApiError {
    let code = e.code();
    telemetry::refused(code);
    let status = match e {
        BodyError::TooLarge { .. } | BodyError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::BadGzip(_) | BodyError::NotABatch(_) => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, code, e.to_string()).field(e.field())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The schema the SDKs are generated from and the validator agree: an
    /// event of each kind, written through the schema's types, is valid.
    #[test]
    fn events_written_by_the_schema_pass_validation() {
        let common = || EventCommon {
            ts: Some(1_800_000_000_000),
            anonymous_id: "v1".into(),
            session_id: Some("s1".into()),
            url: Some("https://shop.example/cart".into()),
            release: Some("web-1".into()),
        };
        let props = [
            ("plan".to_owned(), EventPropValue::Text("pro".into())),
            ("seats".to_owned(), EventPropValue::Number(3.0)),
            ("trial".to_owned(), EventPropValue::Flag(false)),
        ];
        let kinds = [
            IngestEventKind::Pageview { referrer: Some("https://search.example/".into()), title: Some("Cart".into()) },
            IngestEventKind::Event { name: "signup".into(), props: Some(props.into_iter().collect()) },
            IngestEventKind::Error {
                error_type: Some("TypeError".into()),
                message: Some("boom".into()),
                stack: Some("TypeError: boom\n    at f (https://shop.example/app.js:1:2)".into()),
                frames: None,
                fingerprint: Some(vec!["checkout".into()]),
            },
            IngestEventKind::Error {
                error_type: None,
                message: Some("boom".into()),
                stack: None,
                frames: Some(vec![ClientFrame {
                    function: Some("f".into()),
                    file: Some("app.js".into()),
                    line: Some(1),
                    column: Some(2),
                }]),
                fingerprint: None,
            },
            IngestEventKind::Vital { name: VitalMetric::Lcp, value: 1234.5 },
            IngestEventKind::Vital { name: VitalMetric::Cls, value: 0.05 },
        ];
        for kind in kinds {
            let batch = IngestBatch { events: vec![IngestEvent { common: common(), kind }] };
            let body = serde_json::to_vec(&json!({ "events": batch.events })).unwrap();
            let mut decoded = decode_body(&body, Format::Json, Encoding::Identity).unwrap();
            let verdict = validate_event(&mut decoded.events[0]);
            assert!(verdict.is_ok(), "{} is refused: {:?}", String::from_utf8_lossy(&body), verdict.err());
        }
    }
}
