//! A project's keys: public ingest keys (several, each revocable, with an
//! optional rate limit) and the listing and revoking of secret keys.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    INGEST_KEY_ID_PREFIX, INGEST_KEY_PREFIX, Project, Role, Store, StoreError, now_ms, parse_role, project_from_row,
    project_select, random_token, validate_name,
};

/// A public ingest key. Not a secret: it ships in web pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestKey {
    /// `ik_` + 16 lowercase hex characters.
    pub id: String,
    pub project_id: String,
    /// `pk_` + 32 lowercase hex characters.
    pub key: String,
    pub name: String,
    /// Events per second the key may send; `None`: no limit.
    pub rate_limit_per_s: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What an active ingest key grants: its project, under its rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestGrant {
    pub key_id: String,
    pub project: Project,
    pub rate_limit_per_s: Option<i64>,
}

/// A secret key as it is listed: never the secret, which is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretKeyInfo {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The highest rate limit a key may have, in events per second.
pub const MAX_RATE_LIMIT_PER_S: i64 = 1_000_000;

fn ingest_key_from_row(row: &AnyRow) -> Result<IngestKey, StoreError> {
    Ok(IngestKey {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        rate_limit_per_s: row.try_get("rate_limit_per_s")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn check_rate_limit(rate_limit_per_s: Option<i64>) -> Result<(), StoreError> {
    match rate_limit_per_s {
        Some(rate) if !(1..=MAX_RATE_LIMIT_PER_S).contains(&rate) => Err(StoreError::Invalid(format!(
            "`rate_limit_per_s` must be 1 to {MAX_RATE_LIMIT_PER_S} events per second"
        ))),
        _ => Ok(()),
    }
}

impl Store {
    /// The project and limit of an active ingest key.
    pub async fn ingest_grant(&self, key: &str) -> Result<Option<IngestGrant>, StoreError> {
        let row = sqlx::query(
            "SELECT id, project_id, rate_limit_per_s FROM ingest_keys WHERE key = $1 AND revoked_at IS NULL",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let project_id: String = row.try_get("project_id")?;
        let project = sqlx::query(concat!(project_select!(), " WHERE p.id = $1"))
            .bind(&project_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("ingest key of a missing project {project_id:?}")))?;
        Ok(Some(IngestGrant {
            key_id: row.try_get("id")?,
            project: project_from_row(&project)?,
            rate_limit_per_s: row.try_get("rate_limit_per_s")?,
        }))
    }

    /// The project of an active ingest key.
    pub async fn project_by_ingest_key(&self, key: &str) -> Result<Option<Project>, StoreError> {
        Ok(self.ingest_grant(key).await?.map(|grant| grant.project))
    }

    /// A new ingest key for a project.
    pub async fn create_ingest_key(
        &self,
        project_id: &str,
        name: &str,
        rate_limit_per_s: Option<i64>,
    ) -> Result<IngestKey, StoreError> {
        let name = validate_name("name", name)?;
        check_rate_limit(rate_limit_per_s)?;
        let key = IngestKey {
            id: random_token(INGEST_KEY_ID_PREFIX, 8),
            project_id: project_id.to_owned(),
            key: random_token(INGEST_KEY_PREFIX, 16),
            name: name.to_owned(),
            rate_limit_per_s,
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO ingest_keys (id, project_id, key, name, rate_limit_per_s, created_at) \
             SELECT $1, p.id, $2, $3, $4, $5 FROM projects p WHERE p.id = $6",
        )
        .bind(&key.id)
        .bind(&key.key)
        .bind(&key.name)
        .bind(key.rate_limit_per_s)
        .bind(key.created_at)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(key)
    }

    /// A project's ingest keys, oldest first, revoked ones included.
    pub async fn ingest_keys(&self, project_id: &str) -> Result<Vec<IngestKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM ingest_keys WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ingest_key_from_row).collect()
    }

    /// Changes an ingest key's rate limit (`None`: none).
    pub async fn set_ingest_rate_limit(
        &self,
        project_id: &str,
        key_id: &str,
        rate_limit_per_s: Option<i64>,
    ) -> Result<(), StoreError> {
        check_rate_limit(rate_limit_per_s)?;
        let updated = sqlx::query("UPDATE ingest_keys SET rate_limit_per_s = $1 WHERE id = $2 AND project_id = $3")
            .bind(rate_limit_per_s)
            .bind(key_id)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("ingest key {key_id:?} of project {project_id:?}")));
        }
        Ok(())
    }

    /// Revokes an ingest key of the project. The last active key cannot be
    /// revoked: rotating is adding a key first. Returns the key revoked.
    pub async fn revoke_ingest_key(&self, project_id: &str, key_id: &str) -> Result<IngestKey, StoreError> {
        let keys = self.ingest_keys(project_id).await?;
        let key = keys
            .iter()
            .find(|k| k.id == key_id && k.revoked_at.is_none())
            .ok_or_else(|| StoreError::NotFound(format!("active ingest key {key_id:?} of project {project_id:?}")))?;
        if keys.iter().filter(|k| k.revoked_at.is_none()).count() == 1 {
            return Err(StoreError::Invalid(
                "`key_id` is the project's last active ingest key; add another before revoking it".to_owned(),
            ));
        }
        let at = now_ms();
        sqlx::query("UPDATE ingest_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        Ok(IngestKey { revoked_at: Some(at), ..key.clone() })
    }

    /// Records that ingest keys were used at `at` (callers batch this: at
    /// most once a minute per key).
    pub async fn touch_ingest_key(&self, key_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE ingest_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A project's secret keys, oldest first, revoked ones included.
    pub async fn secret_keys(&self, project_id: &str) -> Result<Vec<SecretKeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, project_id, name, role, created_at, last_used_at, revoked_at FROM secret_keys \
             WHERE project_id = $1 ORDER BY created_at, id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let role: String = row.try_get("role")?;
                Ok(SecretKeyInfo {
                    role: parse_role(&role, &id)?,
                    id,
                    project_id: row.try_get("project_id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Whether a secret key belongs to a project (so a key id of project A
    /// cannot be revoked through project B).
    pub async fn secret_key_project(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT project_id FROM secret_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("project_id")).transpose()?)
    }
}
