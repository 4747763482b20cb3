//! Users, login and logout, passwords and project members.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_store::{NewUser, Role, SESSION_LIFETIME_MS, User, hash_password, verify_password};

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, SESSION_COOKIE, authenticate, authenticate_session, csrf_token, session_cookie};
use crate::error::ApiError;
use crate::telemetry;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    /// 12 to 128 characters.
    pub password: String,
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub id: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_owner: bool,
    /// The user logged in with a one-time password and must set a new one.
    pub must_change_password: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            is_owner: u.is_owner,
            must_change_password: u.must_change_password,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// The logged-in user, the projects they may use, and the token every
/// change made with the session cookie must carry in `X-CSRF-Token`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub user: UserView,
    pub projects: Vec<ProjectRole>,
    pub csrf_token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectRole {
    pub project_id: String,
    /// `viewer` or `admin`.
    pub role: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// 12 to 128 characters.
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// `viewer` or `admin`.
    pub role: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user: UserView,
    pub role: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// Argon2 takes tens of milliseconds: off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<CreateUser>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_create_users()?;
    let Json(body) = body?;
    let password = body.password;
    let hash = blocking(move || hash_password(&password)).await??;
    let user = state
        .store
        .create_user(NewUser {
            email: &body.email,
            name: &body.name,
            password_hash: &hash,
            is_owner: false,
            must_change_password: false,
        })
        .await?;
    tracing::info!(user = %user.id, by = %principal.actor(), "user created");
    let details = json!({ "email": user.email, "name": user.name });
    audit::record_by(&state, &principal, source, "user_created", &format!("user:{}", user.id), None, details).await;
    Ok((StatusCode::CREATED, Json(CreatedUser { id: user.id })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts",
    responses((status = 200, body = UserList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<UserList>, ApiError> {
    // Whoever may add users (admins) may see who there is, to add members.
    authenticate(&state, &headers).await?.can_create_users()?;
    let users = state.store.users(sightline_store::DEFAULT_ORGANIZATION).await?;
    Ok(Json(UserList { users: users.iter().map(UserView::from).collect() }))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = Login,
    responses((status = 200, body = SessionView, description = "and the session cookie"),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let now = now_ms();
    if let Err(throttled) = check_throttle(&state, &body.email, peer) {
        let tried: String = body.email.trim().to_lowercase().chars().take(254).collect();
        let object = format!("user:{tried}");
        audit::record(&state, &tried, peer, "login_throttled", &object, None, json!({})).await;
        return Err(throttled);
    }
    let found = state.store.user_for_login(&body.email).await?;
    let hash = found.as_ref().map(|(_, hash)| hash.clone());
    let password = body.password;
    let verified = blocking(move || verify_password(hash.as_deref(), &password)).await?;
    let Some((user, _)) = found.filter(|_| verified) else {
        state.login_throttle.failed(&body.email, peer, now);
        telemetry::auth_refused("wrong_credentials");
        tracing::info!(address = %peer, "login failed");
        // The actor is the email tried (cut short: it is the caller's text).
        let tried: String = body.email.trim().to_lowercase().chars().take(254).collect();
        audit::record(&state, &tried, peer, "login_failed", &format!("user:{tried}"), None, json!({})).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong_credentials", "wrong email or password"));
    };
    state.login_throttle.succeeded(&body.email);
    let session = state.store.open_session(&user.id).await?;
    tracing::info!(user = %user.id, address = %peer, "logged in");
    audit::record(&state, &user.id, peer, "login", &format!("user:{}", user.id), None, json!({})).await;
    let live = state
        .store
        .authenticate_session(&session.token)
        .await?
        .ok_or_else(|| ApiError::internal("a session just opened is not live"))?;
    let view = session_view(&live, &session.token);
    let cookie = session_cookie_header(&session.token, SESSION_LIFETIME_MS / 1000, is_tls(&headers));
    Ok(([(header::SET_COOKIE, cookie)], Json(view)).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204, description = "the session ended and its cookie is cleared"), (status = 401, body = crate::error::ErrorBody)),
    security(("session" = [])))]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = authenticate_session(&state, &headers).await?;
    let session = principal.user()?;
    state.store.revoke_session(&session.session_id).await?;
    tracing::info!(user = %session.user.id, "logged out");
    let object = format!("user:{}", session.user.id);
    audit::record_by(&state, &principal, source, "logout", &object, None, json!({})).await;
    let cleared = session_cookie_header("", 0, is_tls(&headers));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cleared)]).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/session", tag = "accounts",
    responses((status = 200, body = SessionView), (status = 401, body = crate::error::ErrorBody)),
    security(("session" = [])))]
pub async fn current_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let principal = authenticate_session(&state, &headers).await?;
    let token = session_cookie(&headers).unwrap_or_default();
    Ok(Json(session_view(principal.user()?, token)))
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "accounts", request_body = ChangePassword,
    responses((status = 204, description = "changed; every other session of the user ended"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("session" = [])))]
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<ChangePassword>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate_session(&state, &headers).await?;
    let session = principal.user()?;
    let Json(body) = body?;
    let (current, new) = (body.current_password, body.new_password);
    if current == new {
        return Err(ApiError::bad_request("invalid_value", "new_password", "the new password must differ"));
    }
    confirm_password(&state, session, source, current, "current_password").await?;
    let new_hash = blocking(move || hash_password(&new)).await?.map_err(|e| ApiError::from(e).field("new_password"))?;
    state.store.set_password(&session.user.id, &new_hash, Some(&session.session_id)).await?;
    tracing::info!(user = %session.user.id, "password changed");
    let object = format!("user:{}", session.user.id);
    audit::record_by(&state, &principal, source, "password_changed", &object, None, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionEntry {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    /// The session this request was made with.
    pub current: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessions {
    /// The user's password, entered again.
    pub password: String,
    /// The session to end; absent: every session but this one.
    pub session_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "accounts",
    responses((status = 200, body = SessionList), (status = 401, body = crate::error::ErrorBody)),
    security(("session" = [])))]
pub async fn list_sessions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<SessionList>, ApiError> {
    let principal = authenticate_session(&state, &headers).await?;
    let session = principal.user()?;
    let sessions = state
        .store
        .live_sessions(&session.user.id)
        .await?
        .into_iter()
        .map(|s| SessionEntry {
            current: s.id == session.session_id,
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

#[utoipa::path(post, path = "/api/v1/auth/sessions/revoke", tag = "accounts", request_body = RevokeSessions,
    responses((status = 204, description = "ended"), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("session" = [])))]
pub async fn revoke_sessions(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<RevokeSessions>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate_session(&state, &headers).await?;
    let session = principal.user()?;
    let Json(body) = body?;
    confirm_password(&state, session, source, body.password, "password").await?;
    let user_id = &session.user.id;
    let ended = match &body.session_id {
        Some(id) => {
            if !state.store.revoke_user_session(user_id, id).await? {
                return Err(ApiError::not_found(format!("no live session `{id}` of yours")));
            }
            json!({ "session_id": id })
        }
        None => json!({ "others": state.store.revoke_other_sessions(user_id, Some(&session.session_id)).await? }),
    };
    audit::record_by(&state, &principal, source, "sessions_revoked", &format!("user:{user_id}"), None, ended).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/members", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = MemberList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_members(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<MemberList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let members = state.store.members(&id).await?;
    let members =
        members.iter().map(|(user, role)| Member { user: user.into(), role: role.as_str().to_owned() }).collect();
    Ok(Json(MemberList { members }))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/members/{user_id}", tag = "accounts",
    params(("id" = String, Path), ("user_id" = String, Path)), request_body = SetMember,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_member(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<SetMember>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::bad_request("invalid_value", "role", "`role` must be `viewer` or `admin`"))?;
    state.store.set_member(&id, &user_id, role).await?;
    tracing::info!(project = %id, user = %user_id, role = role.as_str(), by = %principal.actor(), "member set");
    let details = json!({ "role": role.as_str() });
    audit::record_by(&state, &principal, source, "member_set", &format!("user:{user_id}"), Some(&id), details).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user_id}", tag = "accounts",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove_member(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.remove_member(&id, &user_id).await? {
        return Err(ApiError::not_found(format!("no member `{user_id}` in project `{id}`")));
    }
    tracing::info!(project = %id, user = %user_id, by = %principal.actor(), "member removed");
    let object = format!("user:{user_id}");
    audit::record_by(&state, &principal, source, "member_removed", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the password a logged-in user entered again (to change it, or to
/// end sessions): throttled and counted like a login; `field` names it in
/// the refusal.
async fn confirm_password(
    state: &AppState,
    session: &sightline_store::SessionUser,
    source: IpAddr,
    password: String,
    field: &str,
) -> Result<(), ApiError> {
    let email = &session.user.email;
    let (_, hash) =
        state.store.user_for_login(email).await?.ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    check_throttle(state, email, source)?;
    if blocking(move || verify_password(Some(&hash), &password)).await? {
        return Ok(());
    }
    state.login_throttle.failed(email, source, now_ms());
    Err(ApiError::bad_request("wrong_credentials", field, format!("the {} is wrong", field.replace('_', " "))))
}

/// Refuses a password check for an account or address that failed too
/// often (logins, and the password entered again to change it or end
/// sessions, count alike).
fn check_throttle(state: &AppState, email: &str, peer: IpAddr) -> Result<(), ApiError> {
    let Some(retry_after_s) = state.login_throttle.retry_after_s(email, peer, now_ms()) else {
        return Ok(());
    };
    telemetry::auth_refused("throttled");
    tracing::warn!(address = %peer, "password checks throttled");
    Err(ApiError {
        retry_after_s: Some(retry_after_s),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", "too many failed passwords; retry later")
    })
}

fn session_view(session: &sightline_store::SessionUser, token: &str) -> SessionView {
    SessionView {
        user: (&session.user).into(),
        projects: session
            .roles
            .iter()
            .map(|(project_id, role)| ProjectRole { project_id: project_id.clone(), role: role.as_str().to_owned() })
            .collect(),
        csrf_token: csrf_token(token),
    }
}

/// `Set-Cookie` for the session: HttpOnly, SameSite=Strict, the whole
/// site, `Secure` when the request came over TLS. An empty token with age
/// 0 clears it.
fn session_cookie_header(token: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("sightline_session=; Max-Age=0"))
}

/// Whether the request reached the TLS-terminating proxy in front of
/// Sightline over HTTPS (`X-Forwarded-Proto` or `Forwarded: proto=`).
/// Believing it can only add `Secure` to the cookie.
fn is_tls(headers: &HeaderMap) -> bool {
    let value = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or("");
    value("x-forwarded-proto").eq_ignore_ascii_case("https")
        || value("forwarded").split([';', ',']).any(|part| part.trim().eq_ignore_ascii_case("proto=https"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let plain = session_cookie_header("ses_x", 60, false);
        assert_eq!(plain, "sightline_session=ses_x; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(session_cookie_header("ses_x", 60, true).to_str().unwrap().ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        assert!(!is_tls(&headers));
        headers.insert("forwarded", HeaderValue::from_static("for=192.0.2.1;proto=https"));
        assert!(is_tls(&headers));
        headers.clear();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(is_tls(&headers));
    }
}
