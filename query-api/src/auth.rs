//! Who is asking: the admin token, a project's secret key, or a user's
//! session cookie; and what each may do. Every route asks here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sightline_store::{Role, SessionUser};

use crate::error::ApiError;
use crate::{AppState, telemetry};

/// The `--admin-token` bootstrap secret. Prints as `***`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: String) -> Option<AdminToken> {
        (!token.is_empty()).then_some(AdminToken(token))
    }

    /// Compares in constant time (over the digests).
    fn matches(&self, candidate: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(candidate.as_bytes());
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sightline_session";
/// The header a cookie-authenticated change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin token: everything, every project.
    Admin,
    /// A secret key of one project, with its role there.
    Key { key_id: String, project_id: String, role: Role },
    /// A logged-in user, with the projects they may use.
    User(Box<SessionUser>),
}

impl Principal {
    /// The caller's role in `project_id`, if any.
    fn role_in(&self, project_id: &str) -> Option<Role> {
        match self {
            Principal::Admin => Some(Role::Admin),
            Principal::Key { project_id: own, role, .. } => (own == project_id).then_some(*role),
            Principal::User(session) => session.roles.iter().find(|(p, _)| p == project_id).map(|(_, role)| *role),
        }
    }

    /// Refuses unless the caller may read `project_id`.
    pub fn can_read(&self, project_id: &str) -> Result<(), ApiError> {
        match self.role_in(project_id) {
            Some(_) => Ok(()),
            None if matches!(self, Principal::Key { .. }) => {
                Err(ApiError::forbidden("this key belongs to another project"))
            }
            None => Err(ApiError::forbidden("you are not a member of this project")),
        }
    }

    /// Refuses unless the caller may change `project_id`.
    pub fn can_admin(&self, project_id: &str) -> Result<(), ApiError> {
        self.can_read(project_id)?;
        match self.role_in(project_id) {
            Some(Role::Admin) => Ok(()),
            _ => Err(ApiError::forbidden("a viewer cannot change settings")),
        }
    }

    /// Whether the caller may create projects: the admin token, an admin
    /// key, an organization owner.
    pub fn can_create_projects(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin | Principal::Key { role: Role::Admin, .. } => Ok(()),
            Principal::User(session) if session.user.is_owner => Ok(()),
            _ => Err(ApiError::forbidden("creating projects needs the admin token, an admin key or an owner")),
        }
    }

    /// Whether the caller may create users: whoever administers something.
    pub fn can_create_users(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin | Principal::Key { role: Role::Admin, .. } => Ok(()),
            Principal::User(session)
                if session.user.is_owner || session.roles.iter().any(|(_, role)| *role == Role::Admin) =>
            {
                Ok(())
            }
            _ => Err(ApiError::forbidden("creating users needs an admin")),
        }
    }

    /// The user behind a session, for account routes.
    pub fn user(&self) -> Result<&SessionUser, ApiError> {
        match self {
            Principal::User(session) => Ok(session),
            _ => Err(ApiError::unauthorized("log in first: this route is for a user's session")),
        }
    }

    /// Who did it, for the log.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "admin-token".to_owned(),
            Principal::Key { key_id, .. } => key_id.clone(),
            Principal::User(session) => session.user.id.clone(),
        }
    }
}

/// Which entries a caller may read.
pub enum AuditScope {
    All,
    /// Entries of the projects the caller administers.
    Projects(Vec<String>),
}

impl Principal {
    /// Which audit entries the caller may read.
    pub fn audit_scope(&self) -> AuditScope {
        match self {
            Principal::Admin => AuditScope::All,
            Principal::User(session) if session.user.is_owner => AuditScope::All,
            Principal::User(session) => AuditScope::Projects(
                session.roles.iter().filter(|(_, role)| *role == Role::Admin).map(|(p, _)| p.clone()).collect(),
            ),
            Principal::Key { project_id, role: Role::Admin, .. } => AuditScope::Projects(vec![project_id.clone()]),
            Principal::Key { .. } => AuditScope::Projects(Vec::new()),
        }
    }
}

/// The address a request came from: the connection's peer or, when the
/// peer is a trusted proxy (`--trusted-proxy`), the nearest address in
/// `X-Forwarded-For` that is not one. Failed logins are counted and changes
/// audited under it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or_else(|| ApiError::internal("the server does not know the connection's address"))?;
        Ok(ClientAddr(client_ip(peer, &parts.headers, &state.trusted_proxies)))
    }
}

fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| {
            let hop = hop.trim();
            hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        })
        .collect();
    // Each proxy appends the address it was reached from: the nearest one
    // not ours is the client (any further left could be made up).
    forwarded.into_iter().rev().find(|hop| !trusted_proxies.contains(hop)).unwrap_or(peer)
}

/// The session token in the request's `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The CSRF token of a session: derived from the session token, which an
/// attacker's page can neither read (HttpOnly) nor guess, so it needs no
/// storage and every API node computes the same one.
pub fn csrf_token(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("sightline-csrf:{session_token}").as_bytes()))
}

/// Authenticates the `Authorization: Bearer` header or, without one, the
/// session cookie. A session whose password must change authenticates
/// nothing but the account routes ([`authenticate_session`]).
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let principal = authenticate_any(state, headers).await?;
    if let Principal::User(session) = &principal
        && session.user.must_change_password
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "set a new password first (POST /api/v1/auth/password)",
        ));
    }
    Ok(principal)
}

/// Like [`authenticate`], also for a session that must change its password.
pub async fn authenticate_session(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    authenticate_any(state, headers).await
}

async fn authenticate_any(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(header) = headers.get(header::AUTHORIZATION) else {
        let token = session_cookie(headers).ok_or_else(|| {
            ApiError::unauthorized("send `Authorization: Bearer <secret key or admin token>` or log in")
        })?;
        return match state.store.authenticate_session(token).await? {
            Some(session) => Ok(Principal::User(Box::new(session))),
            None => Err(ApiError::unauthorized("the session ended; log in again")),
        };
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    if state.admin_token.as_ref().is_some_and(|admin| admin.matches(token)) {
        return Ok(Principal::Admin);
    }
    match state.store.authenticate_secret(token).await? {
        Some(grant) => Ok(Principal::Key { key_id: grant.key_id, project_id: grant.project_id, role: grant.role }),
        None => Err(ApiError::unauthorized("unknown or revoked token")),
    }
}

/// Refuses a change (any method but GET, HEAD and OPTIONS) that would be
/// authenticated by the session cookie unless it carries the session's
/// CSRF token in `X-CSRF-Token`. Requests with an `Authorization` header
/// are authenticated by it, never by the cookie, so they need none; a
/// page on another site can send neither that header nor this one.
pub async fn csrf_guard(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    if !safe
        && !headers.contains_key(header::AUTHORIZATION)
        && let Some(token) = session_cookie(headers)
    {
        let expected = csrf_token(token);
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            telemetry::auth_refused("csrf");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "a change made with the session cookie needs the session's X-CSRF-Token header",
            )
            .field("x-csrf-token")
            .into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_client_is_the_nearest_untrusted_hop_behind_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.9:443"));
        let peer_only = client_ip(proxy, &headers, &[]);
        assert_eq!(peer_only, proxy, "no trusted proxy: the header is not believed");
        let trusted = ["10.0.0.2".parse().unwrap(), "10.0.0.9".parse().unwrap()];
        assert_eq!(client_ip(proxy, &headers, &trusted), "203.0.113.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger, "only a trusted peer's header counts");
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
