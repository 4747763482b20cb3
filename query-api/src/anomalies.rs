//! `GET /projects/{id}/anomalies`: a project series' hourly anomaly scores
//! (the last week of complete hours and, once scored, the current hour),
//! as the dataflow keeps them.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sightline_alerting::rules::AnomalySeries;
use sightline_model::VitalName;
use sightline_operators::Series;
use sightline_operators::vitals::unscale;

use crate::AppState;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::ingest::VitalMetric;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnomaliesParams {
    /// `pageviews`, `error_rate` or `vital_p75`.
    pub series: AnomalySeries,
    /// The vital of `vital_p75`.
    #[param(value_type = Option<VitalMetric>)]
    pub vital: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnomalyPointView {
    /// The hour's start, ms.
    pub t: i64,
    /// The hour's value so far: page views, errors per page view, or the
    /// vital's p75 (ms; CLS unitless).
    pub value: f64,
    /// What the whole hour was expected to hold.
    pub baseline: f64,
    /// (value − baseline) in robust standard deviations; for the current
    /// hour of page views, the value is projected to the whole hour first.
    pub score: f64,
    /// The current hour, scored on its minutes so far.
    pub partial: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnomaliesAnswer {
    /// Oldest first.
    pub points: Vec<AnomalyPointView>,
    /// The newest point's score.
    pub latest_score: Option<f64>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/anomalies", tag = "queries", params(("id" = String, Path), AnomaliesParams),
    responses((status = 200, body = AnomaliesAnswer), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn anomalies(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<AnomaliesParams>, QueryRejection>,
) -> Result<Json<AnomaliesAnswer>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let Query(params) = params?;
    let vital = match (params.series, params.vital.as_deref()) {
        (AnomalySeries::VitalP75, Some(v)) => Some(
            serde_json::from_value::<VitalName>(serde_json::Value::String(v.to_owned()))
                .map_err(|_| ApiError::bad_request("invalid_query", "vital", "LCP, INP, CLS, FCP or TTFB"))?,
        ),
        (AnomalySeries::VitalP75, None) => {
            return Err(ApiError::bad_request("invalid_query", "vital", "`vital_p75` needs `vital`"));
        }
        (_, Some(_)) => return Err(ApiError::bad_request("invalid_query", "vital", "only `vital_p75` takes `vital`")),
        (_, None) => None,
    };
    let series = match (params.series, vital) {
        (AnomalySeries::Pageviews, _) => Series::Pageviews,
        (AnomalySeries::ErrorRate, _) => Series::ErrorRate,
        (AnomalySeries::VitalP75, Some(v)) => Series::VitalP75(v),
        (AnomalySeries::VitalP75, None) => unreachable!("checked above"),
    };
    let unit = |v: f64| match series {
        Series::Pageviews => v,
        Series::ErrorRate => v / 1_000_000.0,
        Series::VitalP75(metric) => unscale(metric, v),
    };
    let points: Vec<AnomalyPointView> = state
        .views()
        .anomalies(&id, series)
        .into_iter()
        .map(|p| AnomalyPointView {
            t: p.hour,
            value: unit(p.value as f64),
            baseline: unit(p.baseline as f64),
            score: p.score_milli as f64 / 1000.0,
            partial: p.partial,
        })
        .collect();
    let latest_score = points.last().map(|p| p.score);
    Ok(Json(AnomaliesAnswer { points, latest_score }))
}
