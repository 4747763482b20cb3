//! Read endpoints over the views, and the live feed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use sightline_model::VitalName;
use sightline_operators::Interval;
use sightline_pipeline::views::MAX_SERIES_POINTS;
use sightline_pipeline::views::{
    BreakdownRow, ErrorGroupDetail, ErrorRatePoint, ErrorsAnswer, ErrorsQuery, EventFilters, EventsAnswer, EventsQuery,
    PageDimension, PageFilters, SessionsQuery, SessionsSummary, VitalsAnswer, VitalsByPage, VitalsQuery, interval_for,
};
use sightline_pipeline::{PageviewsAnswer, PageviewsQuery};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::AppState;
use crate::auth::authenticate;
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageviewsParams {
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
    /// `minute`, `hour` (default) or `day`.
    pub interval: Option<String>,
}

/// The page view filters `pageviews`, `sessions/summary` and `breakdown`
/// share; read from the same query string as each endpoint's own
/// parameters. For sessions they match the session's entry page view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageFilterParams {
    /// Only this path (for sessions: the entry page).
    pub path: Option<String>,
    /// Only this device class (`desktop`, `mobile`, `tablet`, `bot`, `unknown`).
    pub device: Option<String>,
    /// Only this browser (`Chrome`, `Firefox`, `Safari`, …).
    pub browser: Option<String>,
    /// Only this operating system.
    pub os: Option<String>,
    /// Only visits referred by this domain (empty: direct visits).
    pub referrer: Option<String>,
    /// Only page views of this release.
    pub release: Option<String>,
}

impl From<PageFilterParams> for PageFilters {
    fn from(p: PageFilterParams) -> PageFilters {
        PageFilters {
            path: p.path,
            device: p.device,
            browser: p.browser,
            os: p.os,
            referrer: p.referrer,
            release: p.release,
        }
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

#[utoipa::path(get, path = "/api/v1/projects/{id}/pageviews", tag = "queries",
    params(("id" = String, Path), PageviewsParams, PageFilterParams),
    responses((status = 200, body = PageviewsAnswer), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn pageviews(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryResult<PageviewsParams>,
    filters: QueryResult<PageFilterParams>,
) -> Result<Json<PageviewsAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let (Query(params), Query(filters)) = (params?, filters?);
    let interval = match params.interval.as_deref() {
        None => Interval::Hour,
        Some(s) => Interval::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_value", "interval", "`interval` must be minute, hour or day")
        })?,
    };
    let (from, to) = range(params.from, params.to)?;
    if (to - interval.bucket_of(from)) / interval.millis() > MAX_SERIES_POINTS {
        return Err(ApiError::bad_request(
            "invalid_value",
            "interval",
            format!("the range holds more than {MAX_SERIES_POINTS} buckets; use a coarser interval"),
        ));
    }
    let query = PageviewsQuery { project_id: id, interval, from, to, filters: filters.into() };
    Ok(Json(state.views().pageviews(&query)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RangeParams {
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/sessions/summary", tag = "queries",
    params(("id" = String, Path), RangeParams, PageFilterParams),
    responses((status = 200, body = SessionsSummary), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn sessions_summary(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryResult<RangeParams>,
    filters: QueryResult<PageFilterParams>,
) -> Result<Json<SessionsSummary>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let (Query(params), Query(filters)) = (params?, filters?);
    let (from, to) = range(params.from, params.to)?;
    Ok(Json(state.views().sessions_summary(&SessionsQuery { project_id: id, from, to, filters: filters.into() })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct BreakdownParams {
    /// `page`, `entry_page`, `exit_page`, `referrer`, `device`, `browser`, `os` or `release`.
    pub dimension: Option<String>,
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
    /// Most rows to answer (default 100).
    pub limit: Option<usize>,
}

/// The answer to `breakdown`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BreakdownAnswer {
    pub dimension: String,
    /// Most visitors (or sessions) first.
    pub rows: Vec<BreakdownRow>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/breakdown", tag = "queries",
    params(("id" = String, Path), BreakdownParams, PageFilterParams),
    responses((status = 200, body = BreakdownAnswer), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn breakdown(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryResult<BreakdownParams>,
    filters: QueryResult<PageFilterParams>,
) -> Result<Json<BreakdownAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let (Query(params), Query(filters)) = (params?, filters?);
    let filters = PageFilters::from(filters);
    let (from, to) = range(params.from, params.to)?;
    let dimension = params
        .dimension
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("missing_field", "dimension", "`dimension` is required"))?;
    let page_dimension = match dimension {
        "page" => Some(PageDimension::Page),
        "referrer" => Some(PageDimension::Referrer),
        "device" => Some(PageDimension::Device),
        "browser" => Some(PageDimension::Browser),
        "os" => Some(PageDimension::Os),
        "release" => Some(PageDimension::Release),
        "entry_page" | "exit_page" => None,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_value",
                "dimension",
                "`dimension` must be page, entry_page, exit_page, referrer, device, browser, os or release",
            ));
        }
    };
    let mut rows = match page_dimension {
        Some(d) => {
            let query = PageviewsQuery { project_id: id, interval: interval_for(from, to), from, to, filters };
            state.views().breakdown(&query, d, params.limit.unwrap_or(100))
        }
        // Entry and exit pages are per session: the filters match the
        // session's entry page view.
        None => {
            state.views().session_pages(&SessionsQuery { project_id: id, from, to, filters }, dimension == "exit_page")
        }
    };
    rows.truncate(params.limit.unwrap_or(100));
    Ok(Json(BreakdownAnswer { dimension: dimension.to_owned(), rows }))
}

/// The answer to `visitors/current`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CurrentVisitors {
    /// Distinct visitors with a page view in the last five minutes.
    pub visitors: i64,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/visitors/current", tag = "queries",
    params(("id" = String, Path)),
    responses((status = 200, body = CurrentVisitors), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn current_visitors(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<CurrentVisitors>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let now = sightline_pipeline::now_ms() as i64;
    Ok(Json(CurrentVisitors { visitors: state.views().current_visitors(&id, now) }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ErrorsParams {
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
    /// Only events of this release.
    pub release: Option<String>,
    /// Only events on this path.
    pub path: Option<String>,
    /// Only events from this device class (`desktop`, `mobile`, `tablet`, `bot`, `unknown`).
    pub device: Option<String>,
}

/// The range of a query: `to` defaults to now, `from` to 24 h before `to`.
fn range(from: Option<i64>, to: Option<i64>) -> Result<(i64, i64), ApiError> {
    let to = to.unwrap_or_else(|| sightline_pipeline::now_ms() as i64);
    let from = from.unwrap_or(to - Interval::Day.millis());
    if from >= to {
        return Err(ApiError::bad_request("invalid_value", "from", "`from` must be before `to`"));
    }
    Ok((from, to))
}

fn errors_query(id: String, params: ErrorsParams) -> Result<ErrorsQuery, ApiError> {
    let (from, to) = range(params.from, params.to)?;
    Ok(ErrorsQuery { project_id: id, from, to, release: params.release, path: params.path, device: params.device })
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/errors", tag = "queries",
    params(("id" = String, Path), ErrorsParams),
    responses((status = 200, body = ErrorsAnswer), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn errors(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ErrorsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ErrorsAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    Ok(Json(state.views().errors(&errors_query(id, params)?)))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/errors/{fingerprint}", tag = "queries",
    params(("id" = String, Path), ("fingerprint" = String, Path), ErrorsParams),
    responses((status = 200, body = ErrorGroupDetail), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn error_group(
    State(state): State<Arc<AppState>>,
    Path((id, fingerprint)): Path<(String, String)>,
    headers: HeaderMap,
    params: Result<Query<ErrorsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ErrorGroupDetail>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    let query = errors_query(id, params)?;
    let mut detail = state
        .views()
        .error_group(&query, &fingerprint)
        .ok_or_else(|| ApiError::not_found(format!("no error group `{fingerprint}` in this project")))?;
    if let Some(event) = &mut detail.latest_event {
        crate::sourcemaps::resolve_frames_with_context(&state, &query.project_id, event);
    }
    Ok(Json(detail))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ErrorRateParams {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `minute`, `hour` or `day`; default: by the range's length.
    pub interval: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/error-rate", tag = "queries",
    params(("id" = String, Path), ErrorRateParams),
    responses((status = 200, body = Vec<ErrorRatePoint>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn error_rate(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ErrorRateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ErrorRatePoint>>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    let (from, to) = range(params.from, params.to)?;
    let interval = match params.interval.as_deref() {
        None => interval_for(from, to),
        Some(s) => Interval::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_value", "interval", "`interval` must be minute, hour or day")
        })?,
    };
    if (to - interval.bucket_of(from)) / interval.millis() > MAX_SERIES_POINTS {
        return Err(ApiError::bad_request("invalid_value", "interval", "too many buckets; use a coarser interval"));
    }
    Ok(Json(state.views().error_rate(&id, interval, from, to)))
}

/// The query parameters of `events`, parsed by hand: `prop.<key>` can be
/// any key.
fn events_query(id: String, params: Vec<(String, String)>) -> Result<EventsQuery, ApiError> {
    let (mut from, mut to, mut interval, mut name) = (None, None, None, None);
    let mut filters = EventFilters::default();
    let number = |field: &str, value: &str| {
        value
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("invalid_value", field, format!("`{field}` must be ms since the epoch")))
    };
    for (key, value) in params {
        match key.as_str() {
            "from" => from = Some(number("from", &value)?),
            "to" => to = Some(number("to", &value)?),
            "interval" => {
                interval = Some(Interval::parse(&value).ok_or_else(|| {
                    ApiError::bad_request("invalid_value", "interval", "`interval` must be minute, hour or day")
                })?)
            }
            "name" => name = Some(value),
            "path" => filters.path = Some(value),
            "device" => filters.device = Some(value),
            "browser" => filters.browser = Some(value),
            "release" => filters.release = Some(value),
            other => match other.strip_prefix("prop.") {
                Some(prop) if !prop.is_empty() => filters.props.push((prop.to_owned(), value)),
                _ => {
                    return Err(ApiError::bad_request(
                        "unknown_field",
                        other,
                        format!(
                            "unknown parameter `{other}`: use from, to, interval, name, path, device, browser, release or prop.<key>"
                        ),
                    ));
                }
            },
        }
    }
    let (from, to) = range(from, to)?;
    let interval = interval.unwrap_or_else(|| interval_for(from, to));
    if (to - interval.bucket_of(from)) / interval.millis() > MAX_SERIES_POINTS {
        return Err(ApiError::bad_request("invalid_value", "interval", "too many buckets; use a coarser interval"));
    }
    Ok(EventsQuery { project_id: id, interval, from, to, name, filters })
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/events", tag = "queries",
    params(
        ("id" = String, Path),
        ("from" = Option<i64>, Query, description = "Range start, ms since the epoch (default: 24 h before `to`)"),
        ("to" = Option<i64>, Query, description = "Range end, exclusive (default: now)"),
        ("interval" = Option<String>, Query, description = "`minute`, `hour` or `day`; default: by the range's length"),
        ("name" = Option<String>, Query, description = "Only events of this name"),
        ("path" = Option<String>, Query, description = "Only events on this path"),
        ("device" = Option<String>, Query, description = "Only events from this device class"),
        ("browser" = Option<String>, Query, description = "Only events from this browser"),
        ("release" = Option<String>, Query, description = "Only events of this release"),
        ("prop.<key>" = Option<String>, Query, description = "Only events whose property `<key>` has this value; repeatable, all must hold"),
    ),
    responses((status = 200, body = EventsAnswer), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventsAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    Ok(Json(state.views().events(&events_query(id, params)?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct VitalsParams {
    /// `LCP`, `INP`, `CLS`, `FCP`, `TTFB` or `FID`.
    pub name: Option<String>,
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
    /// Only measurements on this path.
    pub path: Option<String>,
    /// Only measurements from this device class.
    pub device: Option<String>,
    /// Only measurements from this browser.
    pub browser: Option<String>,
    /// Only measurements of this release.
    pub release: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/vitals", tag = "queries",
    params(("id" = String, Path), VitalsParams),
    responses((status = 200, body = VitalsAnswer), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn vitals(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<VitalsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<VitalsAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    let query = vitals_query(id, params.name.as_deref(), params.from, params.to, params.path)?;
    let query = VitalsQuery { device: params.device, browser: params.browser, release: params.release, ..query };
    Ok(Json(state.views().vitals(&query)))
}

/// A vitals question's metric and range, checked.
fn vitals_query(
    project_id: String,
    name: Option<&str>,
    from: Option<i64>,
    to: Option<i64>,
    path: Option<String>,
) -> Result<VitalsQuery, ApiError> {
    let name = name.ok_or_else(|| {
        ApiError::bad_request("missing_field", "name", "`name` is required: LCP, INP, CLS, FCP, TTFB or FID")
    })?;
    let metric = VitalName::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
        ApiError::bad_request("invalid_value", "name", "`name` must be LCP, INP, CLS, FCP, TTFB or FID")
    })?;
    let (from, to) = range(from, to)?;
    Ok(VitalsQuery { project_id, metric, from, to, path, device: None, browser: None, release: None })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct VitalsPagesParams {
    /// `LCP`, `INP`, `CLS`, `FCP`, `TTFB` or `FID`.
    pub name: Option<String>,
    /// Range start, ms since the epoch (default: 24 h before `to`).
    pub from: Option<i64>,
    /// Range end, exclusive, ms since the epoch (default: now).
    pub to: Option<i64>,
    /// Only measurements from this device class.
    pub device: Option<String>,
    /// Only measurements from this browser.
    pub browser: Option<String>,
    /// Only measurements of this release.
    pub release: Option<String>,
    /// Most pages to answer, those with the most measurements first (default 20).
    pub limit: Option<usize>,
}

/// One vital's percentiles and ratings per page: which pages are slow.
#[utoipa::path(get, path = "/api/v1/projects/{id}/vitals/pages", tag = "queries",
    params(("id" = String, Path), VitalsPagesParams),
    responses((status = 200, body = VitalsByPage), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn vitals_by_page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<VitalsPagesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<VitalsByPage>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    let query = vitals_query(id, params.name.as_deref(), params.from, params.to, None)?;
    let query = VitalsQuery { device: params.device, browser: params.browser, release: params.release, ..query };
    Ok(Json(state.views().vitals_by_page(&query, params.limit.unwrap_or(20))))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/live", tag = "queries", params(("id" = String, Path)),
    responses((status = 200, description = "Server-Sent Events, one `pageviews` event per view update", content_type = "text/event-stream", body = sightline_pipeline::ViewChange)),
    security(("bearer" = [])))]
pub async fn live(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let changes = BroadcastStream::new(state.views().subscribe()).filter_map(move |change| match change {
        Ok(change) if change.project_id == id => {
            Some(Ok(Event::default().event(change.view()).json_data(&*change).unwrap_or_default()))
        }
        Ok(_) => None,
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            Some(Ok(Event::default().event("lagged").data(format!("{n} updates were skipped; re-read the views"))))
        }
    });
    let changes = futures::StreamExt::take_until(changes, state.shutting_down());
    Ok(Sse::new(changes).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
