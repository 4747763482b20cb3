//! Segments: a project's saved filters. Members read them; admins save and
//! delete them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_store::Segment;

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, authenticate};
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    pub name: String,
    /// Query parameter to value: `path`, `referrer`, `device`, `browser`,
    /// `os`, `release` or `prop.<key>`.
    pub filters: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub filters: BTreeMap<String, String>,
    pub created_by: String,
    pub created_at: i64,
}

impl From<Segment> for SegmentView {
    fn from(s: Segment) -> Self {
        SegmentView { id: s.id, name: s.name, filters: s.filters, created_by: s.created_by, created_at: s.created_at }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentList {
    /// Oldest first.
    pub segments: Vec<SegmentView>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/segments", tag = "queries", params(("id" = String, Path)),
    responses((status = 200, body = SegmentList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_segments(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SegmentList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let segments = state.store.segments(&id).await?.into_iter().map(SegmentView::from).collect();
    Ok(Json(SegmentList { segments }))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/segments", tag = "queries", params(("id" = String, Path)),
    request_body = CreateSegment,
    responses((status = 201, body = SegmentView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_segment(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CreateSegment>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let segment = state.store.create_segment(&id, &body.name, body.filters, &principal.actor()).await?;
    let details = json!({ "name": segment.name, "filters": segment.filters });
    let object = format!("segment:{}", segment.id);
    audit::record_by(&state, &principal, source, "segment_created", &object, Some(&id), details).await;
    Ok((StatusCode::CREATED, Json(segment.into())))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/segments/{segment_id}", tag = "queries",
    params(("id" = String, Path), ("segment_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_segment(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, segment_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.delete_segment(&id, &segment_id).await? {
        return Err(ApiError::not_found(format!("no segment `{segment_id}` in project `{id}`")));
    }
    let object = format!("segment:{segment_id}");
    audit::record_by(&state, &principal, source, "segment_deleted", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
