//! Who is asking: the admin token or a project's secret key.

use std::fmt;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use sightline_store::Role;

use crate::AppState;
use crate::error::ApiError;

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

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin token: everything, every project.
    Admin,
    /// A secret key of one project, with its role there.
    Key { project_id: String, role: Role },
}

impl Principal {
    /// Refuses unless the caller may read `project_id`.
    pub fn can_read(&self, project_id: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Key { project_id: own, .. } if own == project_id => Ok(()),
            Principal::Key { .. } => Err(ApiError::forbidden("this key belongs to another project")),
        }
    }

    /// Refuses unless the caller may change `project_id`.
    pub fn can_admin(&self, project_id: &str) -> Result<(), ApiError> {
        self.can_read(project_id)?;
        match self {
            Principal::Key { role: Role::Viewer, .. } => {
                Err(ApiError::forbidden("a viewer key cannot change settings"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the caller may create projects.
    pub fn can_create_projects(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin | Principal::Key { role: Role::Admin, .. } => Ok(()),
            Principal::Key { .. } => {
                Err(ApiError::forbidden("creating projects needs the admin token or an admin key"))
            }
        }
    }
}

/// Authenticates the `Authorization: Bearer` header.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <secret key or admin token>`"))?;
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
        Some(grant) => Ok(Principal::Key { project_id: grant.project_id, role: grant.role }),
        None => Err(ApiError::unauthorized("unknown or revoked token")),
    }
}
