//! Source map upload, and resolved frames with source context on the group
//! page.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sightline_connectors::SourceMapError;
use sightline_pipeline::views::{ErrorEventView, EventFrame};

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, authenticate};
use crate::error::ApiError;

/// Frames of the group page that get source context.
const FRAMES_WITH_CONTEXT: usize = 5;
/// Lines of context before and after the frame's line.
const CONTEXT_LINES: usize = 5;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// The release the map belongs to (the `release` of error events).
    pub release: String,
    /// The URL (or path) of the minified file, as it appears in stacks.
    pub url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadAnswer {
    pub release: String,
    pub url: String,
    /// How many original sources the map covers.
    pub sources: u32,
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/sourcemaps", tag = "errors",
    params(("id" = String, Path), UploadParams),
    request_body(content = String, description = "the source map (JSON)"),
    responses((status = 201, body = UploadAnswer), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<UploadParams>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Query(params) = params?;
    for (field, value) in [("release", &params.release), ("url", &params.url)] {
        if value.is_empty() || value.len() > 2048 {
            return Err(ApiError::bad_request("invalid_value", field, format!("`{field}` must be 1 to 2048 bytes")));
        }
    }
    if state.store.get_project(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no project `{id}`")));
    }
    let sources = state.sourcemaps.put(&id, &params.release, &params.url, &body).map_err(|e| match e {
        SourceMapError::Invalid(_) => ApiError::bad_request("invalid_sourcemap", "body", e.to_string()),
        SourceMapError::TooLarge => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", e.to_string()).field("body")
        }
        SourceMapError::Io { .. } | SourceMapError::Objects(_) => ApiError::internal(e.to_string()),
    })?;
    tracing::info!(project = %id, release = %params.release, url = %params.url, sources, "source map uploaded");
    let details = serde_json::json!({ "release": params.release, "url": params.url, "sources": sources });
    let object = format!("project:{id}");
    audit::record_by(&state, &principal, source, "sourcemap_uploaded", &object, Some(&id), details).await;
    Ok((StatusCode::CREATED, Json(UploadAnswer { release: params.release, url: params.url, sources })))
}

/// Makes the frames of an event shown on the group page: parsed from its
/// raw stack and resolved through the release's maps as they are now (an
/// event keeps only its stack and group; frames are derived), then the
/// original source lines around the top resolved frames.
pub fn resolve_frames_with_context(state: &AppState, project_id: &str, event: &mut ErrorEventView) {
    let release = event.release.clone();
    let maps = |url: &str| release.as_deref().and_then(|r| state.sourcemaps.get(project_id, r, url));
    if event.frames.is_empty() {
        let mut frames = Vec::new();
        sightline_errors::resolve_frames(event.stack.as_deref(), &mut frames, &maps);
        event.frames = frames.into_iter().map(|frame| EventFrame { frame, context: None }).collect();
    }
    for frame in event.frames.iter_mut().filter(|f| f.frame.minified.is_some()).take(FRAMES_WITH_CONTEXT) {
        let minified = frame.frame.minified.as_ref().map(|m| m.file.as_str()).unwrap_or_default();
        if let Some(map) = maps(minified) {
            frame.context = sightline_errors::source_context(&map, &frame.frame, CONTEXT_LINES);
        }
    }
}
