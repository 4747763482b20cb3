//! Segments: a project's saved filters, shared by its members.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms, random_token, validate_name};

/// The filters a segment may hold (the query API's filter parameters).
pub const SEGMENT_FILTERS: [&str; 6] = ["path", "referrer", "device", "browser", "os", "release"];
/// Most filters in a segment.
const MAX_FILTERS: usize = 20;
/// Longest filter value, in bytes.
const MAX_VALUE_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// `seg_` + 16 lowercase hex characters.
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// Parameter name (one of [`SEGMENT_FILTERS`] or `prop.<key>`) to value.
    pub filters: BTreeMap<String, String>,
    pub created_by: String,
    pub created_at: i64,
}

fn check_filters(filters: &BTreeMap<String, String>) -> Result<(), StoreError> {
    if filters.is_empty() || filters.len() > MAX_FILTERS {
        return Err(StoreError::Invalid(format!("`filters` holds 1 to {MAX_FILTERS} filters")));
    }
    for (name, value) in filters {
        let known =
            SEGMENT_FILTERS.contains(&name.as_str()) || name.strip_prefix("prop.").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(StoreError::Invalid(format!(
                "`filters`: {name:?} is not a filter (one of {} or prop.<key>)",
                SEGMENT_FILTERS.join(", ")
            )));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::Invalid(format!(
                "`filters`: the value of {name} is longer than {MAX_VALUE_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

fn segment_from_row(row: &AnyRow) -> Result<Segment, StoreError> {
    let id: String = row.try_get("id")?;
    let filters: String = row.try_get("filters")?;
    let filters = serde_json::from_str(&filters)
        .map_err(|e| StoreError::Corrupt(format!("segment {id} has filters {filters:?}: {e}")))?;
    Ok(Segment {
        id,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        filters,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Saves a segment of a project.
    pub async fn create_segment(
        &self,
        project_id: &str,
        name: &str,
        filters: BTreeMap<String, String>,
        created_by: &str,
    ) -> Result<Segment, StoreError> {
        let name = validate_name("name", name)?;
        check_filters(&filters)?;
        let segment = Segment {
            id: random_token("seg_", 8),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            filters,
            created_by: created_by.to_owned(),
            created_at: now_ms(),
        };
        let encoded = serde_json::to_string(&segment.filters).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO segments (id, project_id, name, filters, created_by, created_at) \
             SELECT $1, p.id, $2, $3, $4, $5 FROM projects p WHERE p.id = $6",
        )
        .bind(&segment.id)
        .bind(&segment.name)
        .bind(encoded)
        .bind(&segment.created_by)
        .bind(segment.created_at)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(segment)
    }

    /// A project's segments, oldest first.
    pub async fn segments(&self, project_id: &str) -> Result<Vec<Segment>, StoreError> {
        let rows = sqlx::query("SELECT * FROM segments WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(segment_from_row).collect()
    }

    /// Deletes a segment of the project; `false` if it has none by that id.
    pub async fn delete_segment(&self, project_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM segments WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}
