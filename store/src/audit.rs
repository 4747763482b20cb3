//! The audit log: who did what to which object, when and from where.
//!
//! Append-only (the store has no way to change or remove an entry), and
//! hash-chained: entry *n*'s hash is the SHA-256 of entry *n − 1*'s hash and
//! entry *n*'s fields, each length-prefixed, so changing, removing or
//! reordering any entry breaks every hash after it, which
//! [`Store::verify_audit_chain`] finds.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Appends retried when another process took the next sequence number.
const APPEND_ATTEMPTS: usize = 8;
/// Entries read per page while verifying.
const VERIFY_PAGE: i64 = 1_000;

/// What happened, as the caller tells it.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// `usr_…`, `key_…`, `admin-token`, or the email a failed login tried.
    pub actor: &'a str,
    /// `login`, `login_failed`, `logout`, `password_changed`,
    /// `user_created`, `project_created`, `project_updated`, `key_created`,
    /// `member_set`, `member_removed`, …
    pub action: &'a str,
    /// The object acted on: `user:usr_…`, `project:proj_…`, …
    pub object: &'a str,
    /// The project the object belongs to, if any.
    pub project_id: Option<&'a str>,
    pub source_ip: &'a str,
    /// A JSON object with what changed (never a secret).
    pub details: &'a str,
}

/// An entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub project_id: Option<String>,
    pub source_ip: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    /// Entries checked.
    pub entries: i64,
    /// The first entry whose hash or link does not hold, if any.
    pub broken_at: Option<i64>,
    /// The newest entry's hash. A chain cut short at its end is still a
    /// valid chain; recording the head elsewhere now and then lets that be
    /// told too.
    pub head_hash: Option<String>,
}

fn entry_hash(prev_hash: &str, seq: i64, at: i64, entry: &NewAuditEntry<'_>) -> String {
    let mut hasher = Sha256::new();
    let seq = seq.to_string();
    let at = at.to_string();
    let project = entry.project_id.unwrap_or("");
    let present = if entry.project_id.is_some() { "1" } else { "0" };
    for part in [
        prev_hash,
        &seq,
        &at,
        entry.actor,
        entry.action,
        entry.object,
        present,
        project,
        entry.source_ip,
        entry.details,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        object: row.try_get("object")?,
        project_id: row.try_get("project_id")?,
        source_ip: row.try_get("source_ip")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// Appends an entry after the newest one.
    pub async fn append_audit(&self, entry: NewAuditEntry<'_>) -> Result<AuditEntry, StoreError> {
        let mut last_error = None;
        for _ in 0..APPEND_ATTEMPTS {
            let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
            let (prev_seq, prev_hash) = match last {
                Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?),
                None => (0, GENESIS.to_owned()),
            };
            let (seq, at) = (prev_seq + 1, now_ms());
            let hash = entry_hash(&prev_hash, seq, at, &entry);
            // The sequence number is the key: of two appends after the same
            // entry one fails, reads the new newest entry and tries again.
            let inserted = sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, object, project_id, source_ip, details, prev_hash, \
                 hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(seq)
            .bind(at)
            .bind(entry.actor)
            .bind(entry.action)
            .bind(entry.object)
            .bind(entry.project_id)
            .bind(entry.source_ip)
            .bind(entry.details)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    return Ok(AuditEntry {
                        seq,
                        at,
                        actor: entry.actor.to_owned(),
                        action: entry.action.to_owned(),
                        object: entry.object.to_owned(),
                        project_id: entry.project_id.map(str::to_owned),
                        source_ip: entry.source_ip.to_owned(),
                        details: entry.details.to_owned(),
                        prev_hash,
                        hash,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.map_or_else(|| StoreError::Invalid("the audit log is busy".to_owned()), StoreError::from))
    }

    /// Entries newest first, before `before_seq` if given, at most `limit`;
    /// with `projects`, only entries of those projects.
    pub async fn audit_entries(
        &self,
        projects: Option<&[String]>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before_seq.unwrap_or(i64::MAX);
        let rows = match projects {
            None => {
                sqlx::query("SELECT * FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2")
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(projects) => {
                // A few projects at most: one query each, merged.
                let mut rows = Vec::new();
                for project in projects {
                    rows.extend(
                        sqlx::query(
                            "SELECT * FROM audit_log WHERE project_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                        )
                        .bind(project)
                        .bind(before)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?,
                    );
                }
                rows
            }
        };
        let mut entries = rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
        entries.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(entries)
    }

    /// Recomputes every entry's hash from the one before it.
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        let (mut expected_prev, mut expected_seq, mut entries) = (GENESIS.to_owned(), 1, 0);
        loop {
            let rows = sqlx::query("SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2")
                .bind(expected_seq)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.pool)
                .await?;
            if rows.is_empty() {
                // Rows outside the sequence (numbered below 1) break it too.
                let total: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM audit_log").fetch_one(&self.pool).await?.try_get("n")?;
                let broken_at = (total != entries).then_some(expected_seq);
                let head_hash = (entries > 0).then_some(expected_prev);
                return Ok(ChainCheck { entries, broken_at, head_hash });
            }
            for row in &rows {
                let e = entry_from_row(row)?;
                let fields = NewAuditEntry {
                    actor: &e.actor,
                    action: &e.action,
                    object: &e.object,
                    project_id: e.project_id.as_deref(),
                    source_ip: &e.source_ip,
                    details: &e.details,
                };
                let holds = e.seq == expected_seq
                    && e.prev_hash == expected_prev
                    && e.hash == entry_hash(&e.prev_hash, e.seq, e.at, &fields);
                if !holds {
                    return Ok(ChainCheck { entries, broken_at: Some(expected_seq), head_hash: None });
                }
                entries += 1;
                expected_seq += 1;
                expected_prev = e.hash;
            }
        }
    }
}
