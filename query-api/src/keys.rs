//! A project's keys: public ingest keys (list, add, limit, revoke) and the
//! secret keys' list and revocation (creating one is in `projects.rs`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_store::{IngestKey, SecretKeyInfo};

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, authenticate};
use crate::error::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestKeyList {
    /// Oldest first, revoked ones included.
    pub keys: Vec<IngestKeyView>,
}

/// A public ingest key. Not a secret: it ships in web pages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestKeyView {
    pub id: String,
    pub project_id: String,
    /// `pk_…`: what clients send.
    pub key: String,
    pub name: String,
    /// Events per second the key may send; `null`: no limit.
    pub rate_limit_per_s: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<IngestKey> for IngestKeyView {
    fn from(k: IngestKey) -> Self {
        IngestKeyView {
            id: k.id,
            project_id: k.project_id,
            key: k.key,
            name: k.name,
            rate_limit_per_s: k.rate_limit_per_s,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIngestKey {
    pub name: String,
    /// Events per second the key may send (429 with `Retry-After` above
    /// it); absent: no limit.
    pub rate_limit_per_s: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIngestKey {
    /// `null`: no limit.
    pub rate_limit_per_s: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretKeyList {
    /// Oldest first, revoked ones included; never a secret.
    pub keys: Vec<SecretKeyView>,
}

/// A secret key as it is listed: never the secret, which is not kept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretKeyView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// `viewer` or `admin`.
    pub role: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<SecretKeyInfo> for SecretKeyView {
    fn from(k: SecretKeyInfo) -> Self {
        SecretKeyView {
            id: k.id,
            project_id: k.project_id,
            name: k.name,
            role: k.role.as_str().to_owned(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/ingest-keys", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = IngestKeyList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_ingest_keys(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<IngestKeyList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let keys = state.store.ingest_keys(&id).await?.into_iter().map(IngestKeyView::from).collect();
    Ok(Json(IngestKeyList { keys }))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/ingest-keys", tag = "projects", params(("id" = String, Path)),
    request_body = CreateIngestKey,
    responses((status = 201, body = IngestKeyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_ingest_key(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CreateIngestKey>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<IngestKeyView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let key = state.store.create_ingest_key(&id, &body.name, body.rate_limit_per_s).await?;
    let details = json!({ "name": key.name, "rate_limit_per_s": key.rate_limit_per_s });
    let object = format!("ingest_key:{}", key.id);
    audit::record_by(&state, &principal, source, "ingest_key_created", &object, Some(&id), details).await;
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}/ingest-keys/{key_id}", tag = "projects",
    params(("id" = String, Path), ("key_id" = String, Path)), request_body = UpdateIngestKey,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_ingest_key(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<UpdateIngestKey>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    state.store.set_ingest_rate_limit(&id, &key_id, body.rate_limit_per_s).await?;
    state.ingest_keys.forget_project(&id);
    let details = json!({ "rate_limit_per_s": body.rate_limit_per_s });
    let object = format!("ingest_key:{key_id}");
    audit::record_by(&state, &principal, source, "ingest_key_updated", &object, Some(&id), details).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/ingest-keys/{key_id}", tag = "projects",
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 400, description = "the project's last active key", body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_ingest_key(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    state.store.revoke_ingest_key(&id, &key_id).await?;
    state.ingest_keys.forget_project(&id);
    let object = format!("ingest_key:{key_id}");
    audit::record_by(&state, &principal, source, "ingest_key_revoked", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/keys", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = SecretKeyList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_secret_keys(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SecretKeyList>, ApiError> {
    authenticate(&state, &headers).await?.can_admin(&id)?;
    let keys = state.store.secret_keys(&id).await?.into_iter().map(SecretKeyView::from).collect();
    Ok(Json(SecretKeyList { keys }))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/keys/{key_id}", tag = "projects",
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_secret_key(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    // A key of another project is no key of this one.
    if state.store.secret_key_project(&key_id).await?.as_deref() != Some(id.as_str()) {
        return Err(ApiError::not_found(format!("no secret key `{key_id}` in project `{id}`")));
    }
    if !state.store.revoke_secret_key(&key_id).await? {
        return Err(ApiError::not_found(format!("secret key `{key_id}` is already revoked")));
    }
    let object = format!("key:{key_id}");
    audit::record_by(&state, &principal, source, "key_revoked", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
