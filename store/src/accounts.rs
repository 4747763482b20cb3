//! Organizations, users, login sessions and project memberships.
//!
//! Passwords are stored as argon2id PHC strings (the `argon2` crate's
//! defaults: 19 MiB, two passes, OWASP's recommendation); hashing and
//! verifying take tens of milliseconds, so callers run [`hash_password`] and
//! [`verify_password`] off the async threads. Session tokens are stored as
//! their SHA-256, like secret keys: a copy of the database opens no session.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Role, Store, StoreError, hash_secret, now_ms, random_token, validate_name};

/// The organization made on first start; it owns every project until
/// organizations can be created.
pub const DEFAULT_ORGANIZATION: &str = "org_default";
/// Prefix of user identifiers (`usr_` + 16 lowercase hex characters).
pub const USER_ID_PREFIX: &str = "usr_";
/// Prefix of session tokens (`ses_` + 64 lowercase hex characters).
pub const SESSION_PREFIX: &str = "ses_";
/// Passwords are 12 to 128 characters (OWASP ASVS 2.1.1 and 2.1.2).
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;
/// A session ends this long after login however it is used...
pub const SESSION_LIFETIME_MS: i64 = 12 * 3_600_000;
/// ...or after this long unused (ASVS 3.3.2, level 2).
pub const SESSION_IDLE_MS: i64 = 30 * 60_000;
/// A session's last use is written at most this often.
const LAST_SEEN_GRANULARITY_MS: i64 = 60_000;

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub name: String,
    /// Owns the organization: admin of each of its projects, and manages users.
    pub is_owner: bool,
    /// Logged in with a one-time password: only changing it is allowed.
    pub must_change_password: bool,
    pub created_at: i64,
}

/// What a user is allowed to be created with.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    /// An argon2id PHC string from [`hash_password`].
    pub password_hash: &'a str,
    pub is_owner: bool,
    pub must_change_password: bool,
}

/// A session just opened; the token goes into the cookie and is not stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSession {
    pub token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession").field("token", &"***").field("expires_at", &self.expires_at).finish()
    }
}

/// A live session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// The user behind a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub session_id: String,
    pub user: User,
    /// The projects the user may use and the role in each: explicit
    /// memberships, and for an owner every project of the organization as
    /// admin.
    pub roles: Vec<(String, Role)>,
}

/// An argon2id PHC string of `password`, after checking its length.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(StoreError::Invalid(format!(
            "`password` must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, got {chars}"
        )));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Invalid(format!("`password` could not be hashed: {e}")))
}

/// A password for an account made by the server (96 random bits), to be
/// replaced at the first login.
pub fn one_time_password() -> String {
    random_token("", 12)
}

/// Whether `password` matches the PHC string `hash`. With `hash` `None`
/// (no such user) a dummy hash is verified, so an unknown email takes as
/// long to refuse as a wrong password.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        Argon2::default().hash_password(b"not anyone's password").map(|h| h.to_string()).unwrap_or_default()
    });
    let parsed = PasswordHash::new(hash.unwrap_or(&DUMMY));
    let matches = parsed.is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
    matches && hash.is_some()
}

fn normalize_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.contains(char::is_whitespace)
        });
    if valid { Ok(email) } else { Err(StoreError::Invalid("`email` must be an email address".to_owned())) }
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        is_owner: row.try_get::<i64, _>("is_owner")? != 0,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// The columns [`user_from_row`] reads, of `users` aliased `u`.
macro_rules! user_columns {
    () => {
        "u.id, u.organization_id, u.email, u.name, u.is_owner, u.must_change_password, u.created_at"
    };
}

impl Store {
    /// Creates a user in the default organization. Fails with
    /// [`StoreError::Invalid`] naming `email` or `name`, or when the email
    /// is taken.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User, StoreError> {
        let user = User {
            id: random_token(USER_ID_PREFIX, 8),
            organization_id: DEFAULT_ORGANIZATION.to_owned(),
            email: normalize_email(new.email)?,
            name: validate_name("name", new.name)?.to_owned(),
            is_owner: new.is_owner,
            must_change_password: new.must_change_password,
            created_at: now_ms(),
        };
        let taken = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(&user.email)
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::Invalid("`email` is already a user's".to_owned()));
        }
        sqlx::query(
            "INSERT INTO users (id, organization_id, email, name, password_hash, is_owner, must_change_password, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user.id)
        .bind(&user.organization_id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(new.password_hash)
        .bind(i64::from(user.is_owner))
        .bind(i64::from(user.must_change_password))
        .bind(user.created_at)
        .execute(&self.pool)
        .await?;
        Ok(user)
    }

    /// The users of an organization, by email.
    pub async fn users(&self, organization_id: &str) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.organization_id = $1 ORDER BY u.email"
        ))
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// How many users exist (none on a first start).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this email (any case) and the password hash to check.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let row = sqlx::query(concat!("SELECT ", user_columns!(), ", u.password_hash FROM users u WHERE u.email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?))).transpose()
    }

    /// Replaces a user's password hash, clears the one-time flag and ends
    /// every session but `keep_session`.
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE users SET password_hash = $1, must_change_password = 0 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user_id:?}")));
        }
        self.revoke_other_sessions(user_id, keep_session).await?;
        Ok(())
    }

    /// Ends every session of a user but `keep`; returns how many.
    pub async fn revoke_other_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StoreError> {
        let result =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3")
                .bind(now_ms())
                .bind(user_id)
                .bind(keep.unwrap_or(""))
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected())
    }

    /// Ends one of a user's own sessions; `false` if it is not theirs or
    /// already ended.
    pub async fn revoke_user_session(&self, user_id: &str, session_id: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(session_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    /// A user's live sessions, newest first.
    pub async fn live_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, created_at, last_seen_at, expires_at FROM sessions WHERE user_id = $1 \
             AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3 ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .bind(now - SESSION_IDLE_MS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Opens a session for a user who just proved their password.
    pub async fn open_session(&self, user_id: &str) -> Result<OpenedSession, StoreError> {
        let now = now_ms();
        let session = OpenedSession { token: random_token(SESSION_PREFIX, 32), expires_at: now + SESSION_LIFETIME_MS };
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(random_token("sid_", 8))
        .bind(hash_secret(&session.token))
        .bind(user_id)
        .bind(now)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(session)
    }

    /// The user of a live session (not revoked, not past its lifetime, used
    /// within the idle timeout), with the projects they may use; records
    /// the use.
    pub async fn authenticate_session(&self, token: &str) -> Result<Option<SessionUser>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(concat!(
            "SELECT s.id AS session_id, s.last_seen_at, ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $3"
        ))
        .bind(hash_secret(token))
        .bind(now)
        .bind(now - SESSION_IDLE_MS)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let session_id: String = row.try_get("session_id")?;
        let last_seen: i64 = row.try_get("last_seen_at")?;
        if now - last_seen >= LAST_SEEN_GRANULARITY_MS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&session_id)
                .execute(&self.pool)
                .await?;
        }
        let user = user_from_row(&row)?;
        let roles = self.roles_of(&user).await?;
        Ok(Some(SessionUser { session_id, user, roles }))
    }

    /// Ends a session (logout). Returns whether it was live.
    pub async fn revoke_session(&self, session_id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Makes `user_id` a member of `project_id` with `role`, or changes the
    /// role. Both must exist and be of one organization.
    pub async fn set_member(&self, project_id: &str, user_id: &str, role: Role) -> Result<(), StoreError> {
        let same_org = sqlx::query(
            "SELECT p.id FROM projects p JOIN users u ON u.organization_id = p.organization_id \
             WHERE p.id = $1 AND u.id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .is_some();
        if !same_org {
            return Err(StoreError::NotFound(format!(
                "user {user_id:?} in the organization of project {project_id:?}"
            )));
        }
        sqlx::query(
            "INSERT INTO members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a membership. Returns whether there was one.
    pub async fn remove_member(&self, project_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM members WHERE project_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// The members of a project and their roles, by email.
    pub async fn members(&self, project_id: &str) -> Result<Vec<(User, Role)>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", m.role FROM members m JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.email"
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let user = user_from_row(row)?;
                let role: String = row.try_get("role")?;
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("member {} has role {role:?}", user.id)))?;
                Ok((user, role))
            })
            .collect()
    }

    async fn roles_of(&self, user: &User) -> Result<Vec<(String, Role)>, StoreError> {
        if user.is_owner {
            let rows = sqlx::query("SELECT id FROM projects WHERE organization_id = $1")
                .bind(&user.organization_id)
                .fetch_all(&self.pool)
                .await?;
            return rows.iter().map(|row| Ok((row.try_get("id")?, Role::Admin))).collect();
        }
        let rows = sqlx::query("SELECT project_id, role FROM members WHERE user_id = $1")
            .bind(&user.id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("member {} has role {role:?}", user.id)))?;
                Ok((row.try_get("project_id")?, role))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "correct horse battery!"));
        assert!(!verify_password(None, "correct horse battery"));
        assert!(!verify_password(Some("not a phc string"), "x"));
        assert!(hash_password("short").unwrap_err().to_string().contains("`password`"));
        assert!(hash_password(&"x".repeat(129)).is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a@b@c", "a b@c.d"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opened_session_debug_hides_the_token() {
        let session = OpenedSession { token: "ses_secret".into(), expires_at: 1 };
        assert!(!format!("{session:?}").contains("ses_secret"));
    }
}
