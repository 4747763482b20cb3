//! Metadata persistence for Sightline: organizations, projects and their API
//! keys, users, sessions and memberships ([`accounts`]), and the
//! hash-chained audit log ([`audit`]).
//!
//! One code path serves both SQLite and PostgreSQL through [`sqlx::AnyPool`].
//! Each backend has its own migration set (`migrations/sqlite` and
//! `migrations/postgres`), embedded at compile time and run by
//! [`Store::connect`].
//!
//! Because the `Any` driver only understands simple types, timestamps are
//! stored as `BIGINT` milliseconds since the Unix epoch and roles as text.
//! All SQL uses `$1`-style numbered placeholders, which both backends accept.
//!
//! Secret keys are never stored in clear: only the lowercase hex SHA-256 of a
//! secret is persisted, and the secret itself is returned exactly once, by
//! [`Store::create_secret_key`].

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod dashboards;
pub mod keys;
pub mod segments;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

pub use accounts::{
    DEFAULT_ORGANIZATION, NewUser, OpenedSession, SESSION_LIFETIME_MS, SessionUser, User, hash_password,
    one_time_password, verify_password,
};
pub use alerts::{Channel, Delivery, DeliveryStatus, Incident, NewDelivery, Rule};
pub use audit::{AuditEntry, ChainCheck, NewAuditEntry};
pub use dashboards::Dashboard;
pub use keys::{IngestGrant, IngestKey, SecretKeyInfo};
pub use segments::Segment;

/// Migrations for SQLite databases.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Migrations for PostgreSQL databases.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Maximum length of a project or key name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 200;

/// Prefix of project identifiers (`proj_` + 20 lowercase hex characters).
pub const PROJECT_ID_PREFIX: &str = "proj_";
/// Prefix of public ingest keys (`pk_` + 32 lowercase hex characters).
pub const INGEST_KEY_PREFIX: &str = "pk_";
/// Prefix of ingest key identifiers (`ik_` + 16 lowercase hex characters).
pub const INGEST_KEY_ID_PREFIX: &str = "ik_";
/// Prefix of secret key identifiers (`key_` + 16 lowercase hex characters).
pub const SECRET_KEY_ID_PREFIX: &str = "key_";
/// Prefix of secret keys (`sk_` + 48 lowercase hex characters).
pub const SECRET_PREFIX: &str = "sk_";

/// Errors returned by [`Store`] operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database rejected a query or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the schema migrations failed.
    #[error("failed to apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The connection URL does not name a supported backend.
    ///
    /// The payload describes the offending URL without any credentials.
    #[error(
        "unsupported database URL {0}: expected `sqlite://path/to/file.db`, `sqlite::memory:`, \
         `postgres://...` or `postgresql://...`"
    )]
    UnsupportedUrl(String),

    /// A referenced entity does not exist, e.g. `project proj_0123…`.
    #[error("{0} does not exist")]
    NotFound(String),

    /// An argument failed validation; the message names the offending field.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// A row read back from the database violates an invariant the store
    /// relies on (e.g. an unknown role), which means it was written by
    /// something else.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// Permission level of a secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read analytics data.
    Viewer,
    /// May read data and manage the project.
    Admin,
}

impl Role {
    /// The canonical lowercase name: `"viewer"` or `"admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name, ignoring ASCII case and surrounding whitespace.
    /// Returns `None` for anything other than `viewer` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("viewer") {
            Some(Role::Viewer)
        } else if s.eq_ignore_ascii_case("admin") {
            Some(Role::Admin)
        } else {
            None
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The database backend a [`Store`] is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (file or in-memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Lowercase backend name: `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A project: the unit that owns events and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Identifier, `proj_` + 20 lowercase hex characters.
    pub id: String,
    /// Human-readable name (trimmed, 1..=200 characters).
    pub name: String,
    /// The organization the project belongs to.
    pub organization_id: String,
    /// Public ingest key, `pk_` + 32 lowercase hex characters. Not a secret:
    /// it is embedded in tracking snippets.
    pub ingest_key: String,
    /// Browser origins (`https://shop.example`) ingest accepts events from;
    /// empty: any.
    pub allowed_origins: Vec<String>,
    /// Creation time in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A freshly created secret key. This is the only time the clear-text
/// secret is available; the store keeps only its SHA-256 hash.
///
/// `Debug` prints the secret as `***`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct CreatedKey {
    /// Key identifier, `key_` + 16 lowercase hex characters.
    pub id: String,
    /// Project the key belongs to.
    pub project_id: String,
    /// Human-readable name (trimmed, 1..=200 characters).
    pub name: String,
    /// Permission level.
    pub role: Role,
    /// The secret, `sk_` + 48 lowercase hex characters. Show it to the user
    /// once; it cannot be retrieved again.
    pub secret: String,
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("secret", &"***")
            .finish()
    }
}

/// What a valid secret grants: which key matched, for which project, with
/// which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretGrant {
    /// Identifier of the matching key.
    pub key_id: String,
    /// Project the key belongs to.
    pub project_id: String,
    /// Permission level of the key.
    pub role: Role,
}

/// Handle to the metadata database. Cheap to clone (shares the pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// How a connection URL was classified.
struct ParsedUrl {
    backend: Backend,
    /// URL handed to sqlx (SQLite URLs get `mode=rwc` added when no mode is given).
    url: String,
    /// SQLite in-memory database: must live on a single, never-recycled connection.
    in_memory: bool,
}

fn parse_url(url: &str) -> Result<ParsedUrl, StoreError> {
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(ParsedUrl { backend: Backend::Postgres, url: trimmed.to_owned(), in_memory: false });
    }
    if let Some(rest) = lower.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let has_mode = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode=")));
        let in_memory = path == ":memory:" || query.is_some_and(|q| q.split('&').any(|kv| kv == "mode=memory"));
        if path.is_empty() && !in_memory {
            return Err(StoreError::UnsupportedUrl("`sqlite:` without a file path".to_owned()));
        }
        let url = if has_mode || in_memory {
            trimmed.to_owned()
        } else if query.is_some() {
            format!("{trimmed}&mode=rwc")
        } else {
            format!("{trimmed}?mode=rwc")
        };
        return Ok(ParsedUrl { backend: Backend::Sqlite, url, in_memory });
    }
    // Never echo the URL itself: it may carry a password.
    let described = match trimmed.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            format!("with scheme `{scheme}`")
        }
        _ => "without a recognizable scheme".to_owned(),
    };
    Err(StoreError::UnsupportedUrl(described))
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `prefix` followed by `2 * bytes` lowercase hex characters of randomness.
fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    let mut out = String::with_capacity(prefix.len() + bytes * 2);
    out.push_str(prefix);
    out.push_str(&hex::encode(buf));
    out
}

/// Lowercase hex SHA-256 of a secret: the only form in which secrets are stored.
fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The columns [`project_from_row`] reads, of `projects` aliased `p`, with
/// the project's oldest active ingest key as `ingest_key`.
macro_rules! project_select {
    () => {
        "SELECT p.id, p.name, p.organization_id, p.allowed_origins, p.created_at, \
         (SELECT k.key FROM ingest_keys k WHERE k.project_id = p.id AND k.revoked_at IS NULL \
          ORDER BY k.created_at, k.id LIMIT 1) AS ingest_key FROM projects p"
    };
}
pub(crate) use project_select;

/// Most allowed origins per project.
pub const MAX_ALLOWED_ORIGINS: usize = 100;

/// A browser origin as the `Origin` header carries it: `scheme://host` and
/// the port unless it is the scheme's default, lowercase, punycode hosts.
/// Anything that is not an http(s) origin (a path, a query, credentials,
/// `null`) is [`StoreError::Invalid`].
pub fn normalize_origin(origin: &str) -> Result<String, StoreError> {
    let invalid =
        || StoreError::Invalid(format!("`allowed_origins`: {origin:?} is not an origin like https://shop.example"));
    let url = url::Url::parse(origin.trim()).map_err(|_| invalid())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host().is_some();
    if !bare {
        return Err(invalid());
    }
    Ok(url.origin().ascii_serialization())
}

/// Trims `value` and checks it is 1..=[`MAX_NAME_CHARS`] characters long.
fn validate_name<'a>(field: &str, value: &'a str) -> Result<&'a str, StoreError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(StoreError::Invalid(format!("`{field}` must not be empty or only whitespace")));
    }
    if len > MAX_NAME_CHARS {
        return Err(StoreError::Invalid(format!(
            "`{field}` must be at most {MAX_NAME_CHARS} characters after trimming, got {len}"
        )));
    }
    Ok(trimmed)
}

fn parse_role(raw: &str, key_id: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| {
        StoreError::Corrupt(format!("secret key {key_id} has role {raw:?}, expected \"viewer\" or \"admin\""))
    })
}

pub(crate) fn project_from_row(row: &AnyRow) -> Result<Project, StoreError> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        organization_id: row.try_get("organization_id")?,
        ingest_key: row.try_get("ingest_key")?,
        allowed_origins: row
            .try_get::<String, _>("allowed_origins")?
            .lines()
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Connects to the database named by `url` and applies the backend's
    /// pending migrations (re-running them is a no-op).
    ///
    /// Accepted URLs:
    /// * `sqlite://path/to/file.db` (or `sqlite:path`): the file is created
    ///   if missing (`mode=rwc` is added unless a `mode` is given). Foreign
    ///   keys are enforced and the journal is switched to WAL.
    /// * `sqlite::memory:`: a private in-memory database held on a single
    ///   connection for the lifetime of the store.
    /// * `postgres://...` or `postgresql://...`.
    ///
    /// Anything else yields [`StoreError::UnsupportedUrl`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let parsed = parse_url(url)?;

        let mut options = AnyPoolOptions::new();
        if parsed.backend == Backend::Sqlite {
            if parsed.in_memory {
                // Every new connection to `sqlite::memory:` would open a new,
                // empty database, so keep exactly one connection alive forever.
                options = options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
            }
            let wal = !parsed.in_memory;
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    if wal {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        } else {
            options = options.acquire_timeout(Duration::from_secs(10));
        }

        let pool = options.connect(&parsed.url).await?;
        let migrator = match parsed.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        if let Err(err) = migrator.run(&pool).await {
            pool.close().await;
            return Err(err.into());
        }
        tracing::debug!(backend = %parsed.backend, "metadata store connected and migrated");
        Ok(Store { pool, backend: parsed.backend })
    }

    /// The backend this store is connected to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Creates a project with a fresh id and ingest key.
    ///
    /// `name` is trimmed and must then be 1..=200 characters, otherwise
    /// [`StoreError::Invalid`] naming the `name` field is returned.
    pub async fn create_project(&self, name: &str) -> Result<Project, StoreError> {
        let name = validate_name("name", name)?;
        let project = Project {
            id: random_token(PROJECT_ID_PREFIX, 10),
            name: name.to_owned(),
            organization_id: DEFAULT_ORGANIZATION.to_owned(),
            ingest_key: random_token(INGEST_KEY_PREFIX, 16),
            allowed_origins: Vec::new(),
            created_at: now_ms(),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO projects (id, name, organization_id, ingest_key, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&project.id)
        .bind(&project.name)
        .bind(&project.organization_id)
        .bind(&project.ingest_key)
        .bind(project.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO ingest_keys (id, project_id, key, name, created_at) VALUES ($1, $2, $3, 'default', $4)",
        )
        .bind(random_token(INGEST_KEY_ID_PREFIX, 8))
        .bind(&project.id)
        .bind(&project.ingest_key)
        .bind(project.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    /// All projects, oldest first (ties broken by id).
    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows =
            sqlx::query(concat!(project_select!(), " ORDER BY p.created_at, p.id")).fetch_all(&self.pool).await?;
        rows.iter().map(project_from_row).collect()
    }

    /// The project with the given id, if any.
    pub async fn get_project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let row =
            sqlx::query(concat!(project_select!(), " WHERE p.id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(project_from_row).transpose()
    }

    /// Renames a project and/or replaces its allowed origins (each
    /// normalized to `scheme://host[:port]`); returns it as it now is.
    /// Fails with [`StoreError::NotFound`] or [`StoreError::Invalid`]
    /// naming `name` or `allowed_origins`.
    pub async fn update_project(
        &self,
        id: &str,
        name: Option<&str>,
        allowed_origins: Option<&[String]>,
    ) -> Result<Project, StoreError> {
        let mut project = self.get_project(id).await?.ok_or_else(|| StoreError::NotFound(format!("project {id:?}")))?;
        if let Some(name) = name {
            project.name = validate_name("name", name)?.to_owned();
        }
        if let Some(origins) = allowed_origins {
            if origins.len() > MAX_ALLOWED_ORIGINS {
                return Err(StoreError::Invalid(format!("`allowed_origins` holds at most {MAX_ALLOWED_ORIGINS}")));
            }
            let mut normalized = origins.iter().map(|o| normalize_origin(o)).collect::<Result<Vec<_>, _>>()?;
            normalized.sort();
            normalized.dedup();
            project.allowed_origins = normalized;
        }
        sqlx::query("UPDATE projects SET name = $1, allowed_origins = $2 WHERE id = $3")
            .bind(&project.name)
            .bind(project.allowed_origins.join("\n"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(project)
    }

    /// Deletes a project with its keys and members, and remembers that it
    /// was (its events are then skipped wherever they are read again).
    /// Returns whether it existed.
    pub async fn delete_project(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO deleted_projects (id, deleted_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The ids of every deleted project.
    pub async fn deleted_projects(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM deleted_projects ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(row.try_get("id")?)).collect()
    }

    /// Creates a secret key for a project and returns it, including the
    /// clear-text secret, which is not stored and cannot be retrieved again.
    ///
    /// Fails with [`StoreError::NotFound`] if the project does not exist and
    /// [`StoreError::Invalid`] if `name` is not 1..=200 characters after
    /// trimming.
    pub async fn create_secret_key(&self, project_id: &str, name: &str, role: Role) -> Result<CreatedKey, StoreError> {
        let name = validate_name("name", name)?;
        let key = CreatedKey {
            id: random_token(SECRET_KEY_ID_PREFIX, 8),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            role,
            secret: random_token(SECRET_PREFIX, 24),
        };
        // Insert only if the project exists, in a single statement, so a
        // missing project is reported as NotFound rather than as a
        // backend-specific foreign-key error.
        let result = sqlx::query(
            "INSERT INTO secret_keys (id, project_id, name, role, secret_hash, created_at) \
             SELECT $1, p.id, $2, $3, $4, $5 FROM projects p WHERE p.id = $6",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(role.as_str())
        .bind(hash_secret(&key.secret))
        .bind(now_ms())
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(key)
    }

    /// Looks up a secret by its SHA-256 hash. On a match with a key that is
    /// not revoked, records the current time (ms) as the key's
    /// `last_used_at` and returns what the key grants; returns `None` for
    /// unknown or revoked secrets.
    pub async fn authenticate_secret(&self, secret: &str) -> Result<Option<SecretGrant>, StoreError> {
        let row = sqlx::query(
            "UPDATE secret_keys SET last_used_at = $1 \
             WHERE secret_hash = $2 AND revoked_at IS NULL \
             RETURNING id, project_id, role",
        )
        .bind(now_ms())
        .bind(hash_secret(secret))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key_id: String = row.try_get("id")?;
        let role: String = row.try_get("role")?;
        Ok(Some(SecretGrant { role: parse_role(&role, &key_id)?, project_id: row.try_get("project_id")?, key_id }))
    }

    /// When the secret key `key_id` was last successfully used with
    /// [`Store::authenticate_secret`], in milliseconds since the Unix epoch;
    /// `None` if it has never been used.
    ///
    /// Fails with [`StoreError::NotFound`] if there is no such key.
    pub async fn secret_key_last_used(&self, key_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT last_used_at FROM secret_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("secret key {key_id:?}")))?;
        Ok(row.try_get("last_used_at")?)
    }

    /// Revokes the secret key `key_id`, so that its secret no longer
    /// authenticates. Returns `true` if the key was active and is now
    /// revoked, `false` if it was already revoked.
    ///
    /// Fails with [`StoreError::NotFound`] if there is no such key.
    pub async fn revoke_secret_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE secret_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() > 0 {
            return Ok(true);
        }
        let exists = sqlx::query("SELECT id FROM secret_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if exists { Ok(false) } else { Err(StoreError::NotFound(format!("secret key {key_id:?}"))) }
    }

    /// Closes every pooled connection and waits for them to shut down.
    /// Further operations on this store (or its clones) fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_classification() {
        let p = parse_url("sqlite:///tmp/x.db").unwrap();
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.url, "sqlite:///tmp/x.db?mode=rwc");
        assert!(!p.in_memory);

        let p = parse_url("sqlite://x.db?cache=shared").unwrap();
        assert_eq!(p.url, "sqlite://x.db?cache=shared&mode=rwc");

        let p = parse_url("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(p.url, "sqlite://x.db?mode=ro");

        let p = parse_url("sqlite::memory:").unwrap();
        assert!(p.in_memory);
        assert_eq!(p.url, "sqlite::memory:");

        for url in ["postgres://u@h/db", "postgresql://u:pw@h:5432/db"] {
            let p = parse_url(url).unwrap();
            assert_eq!(p.backend, Backend::Postgres);
            assert_eq!(p.url, url);
        }

        let err = parse_url("mysql://root:hunter2@h/db").err().unwrap();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)));
        let msg = err.to_string();
        assert!(msg.contains("`mysql`"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(matches!(parse_url("not a url"), Err(StoreError::UnsupportedUrl(_))));
        assert!(matches!(parse_url("sqlite://"), Err(StoreError::UnsupportedUrl(_))));
    }

    #[test]
    fn tokens_have_documented_shape() {
        let check = |t: &str, prefix: &str, hex_len: usize| {
            let rest = t.strip_prefix(prefix).unwrap();
            assert_eq!(rest.len(), hex_len, "{t}");
            assert!(rest.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{t}");
        };
        check(&random_token(PROJECT_ID_PREFIX, 10), "proj_", 20);
        check(&random_token(INGEST_KEY_PREFIX, 16), "pk_", 32);
        check(&random_token(SECRET_KEY_ID_PREFIX, 8), "key_", 16);
        check(&random_token(SECRET_PREFIX, 24), "sk_", 48);
        assert_ne!(random_token("x", 16), random_token("x", 16));
    }

    #[test]
    fn origins_are_normalized_and_anything_else_refused() {
        assert_eq!(normalize_origin("https://Shop.Example").unwrap(), "https://shop.example");
        assert_eq!(normalize_origin("https://shop.example:443/").unwrap(), "https://shop.example");
        assert_eq!(normalize_origin("http://localhost:5173").unwrap(), "http://localhost:5173");
        assert_eq!(normalize_origin("https://bücher.example").unwrap(), "https://xn--bcher-kva.example");
        for bad in [
            "shop.example",
            "https://shop.example/app",
            "https://u:p@shop.example",
            "null",
            "ftp://x.example",
            "https://x.example?q=1",
            "*",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_hash_is_lowercase_hex_sha256() {
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn role_round_trips() {
        for role in [Role::Viewer, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse(" Admin "), Some(Role::Admin));
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn name_validation() {
        assert_eq!(validate_name("name", "  hi  ").unwrap(), "hi");
        assert!(validate_name("name", &"é".repeat(200)).is_ok());
        let err = validate_name("name", &"é".repeat(201)).unwrap_err();
        assert!(err.to_string().contains("`name`"), "{err}");
        let err = validate_name("name", " \t ").unwrap_err();
        assert!(err.to_string().contains("`name`"), "{err}");
    }

    #[test]
    fn created_key_debug_hides_secret() {
        let key = CreatedKey {
            id: "key_0".into(),
            project_id: "proj_0".into(),
            name: "ci".into(),
            role: Role::Viewer,
            secret: "sk_supersecret".into(),
        };
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");
    }
}
