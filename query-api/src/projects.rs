//! Projects and their keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_store::{Project, Role};

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, Principal, authenticate};
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
}

/// A project as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    /// The public ingest key: it ships in web pages and can only write events.
    pub ingest_key: String,
    /// Browser origins ingest accepts events from; empty: any.
    pub allowed_origins: Vec<String>,
    pub created_at: i64,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id,
            name: p.name,
            ingest_key: p.ingest_key,
            allowed_origins: p.allowed_origins,
            created_at: p.created_at,
        }
    }
}

/// What `PATCH /api/v1/projects/{id}` changes; absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    /// Once set, ingest from a browser `Origin` not listed is refused with
    /// `403`, and CORS answers only listed origins. `[]` accepts any.
    pub allowed_origins: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// `viewer` or `admin`.
    pub role: String,
}

/// A new secret key. The secret is shown here only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub project_id: String,
    pub secret: String,
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_project(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<CreateProject>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_create_projects()?;
    let Json(body) = body?;
    let project = state.store.create_project(&body.name).await?;
    tracing::info!(project = %project.id, name = %project.name, "project created");
    let object = format!("project:{}", project.id);
    let details = json!({ "name": project.name });
    audit::record_by(&state, &principal, source, "project_created", &object, Some(&project.id), details).await;
    Ok((StatusCode::CREATED, Json(project.into())))
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = ProjectList), (status = 401, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_projects(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ProjectList>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let projects = state.store.list_projects().await?;
    let visible = projects.into_iter().filter(|p| principal.can_read(&p.id).is_ok()).map(ProjectView::from).collect();
    Ok(Json(ProjectList { projects: visible }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_project(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ProjectView>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let project =
        state.store.get_project(&id).await?.ok_or_else(|| ApiError::not_found(format!("no project `{id}`")))?;
    Ok(Json(project.into()))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)), request_body = UpdateProject,
    responses((status = 200, body = ProjectView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_project(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<UpdateProject>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ProjectView>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let project = state.store.update_project(&id, body.name.as_deref(), body.allowed_origins.as_deref()).await?;
    state.ingest_keys.forget_project(&project.id);
    tracing::info!(project = %id, by = %principal.actor(), "project updated");
    let details = json!({ "name": body.name, "allowed_origins": body.allowed_origins });
    audit::record_by(&state, &principal, source, "project_updated", &format!("project:{id}"), Some(&id), details).await;
    Ok(Json(project.into()))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204, description = "deleted, with its keys, members, source maps and events"),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_project(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.delete_project(&id).await? {
        return Err(ApiError::not_found(format!("no project `{id}`")));
    }
    state.ingest_keys.forget_project(&id);
    state.dataflow.forget_project(&id);
    if let Err(e) = state.sourcemaps.delete_project(&id) {
        tracing::error!(project = %id, error = %e, "could not delete a deleted project's source maps");
    }
    tracing::info!(project = %id, by = %principal.actor(), "project deleted");
    audit::record_by(&state, &principal, source, "project_deleted", &format!("project:{id}"), Some(&id), json!({}))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/keys", tag = "projects", params(("id" = String, Path)), request_body = CreateKey,
    responses((status = 201, body = CreatedKeyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CreateKey>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKeyView>), ApiError> {
    let principal: Principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::bad_request("invalid_value", "role", "`role` must be `viewer` or `admin`"))?;
    let key = state.store.create_secret_key(&id, &body.name, role).await?;
    tracing::info!(project = %id, key = %key.id, role = role.as_str(), "secret key created");
    let details = json!({ "name": key.name, "role": role.as_str() });
    audit::record_by(&state, &principal, source, "key_created", &format!("key:{}", key.id), Some(&id), details).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyView {
            id: key.id,
            name: key.name,
            role: role.as_str().to_owned(),
            project_id: key.project_id,
            secret: key.secret,
        }),
    ))
}
