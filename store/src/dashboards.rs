//! Dashboards: a project's named grids of widgets, shared by its members.
//! The store keeps the widgets as the JSON the query API validated; it
//! only bounds their size.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms, random_token, validate_name};

/// Largest widgets document, in bytes.
pub const MAX_WIDGETS_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// `dsh_` + 16 lowercase hex characters.
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// The widgets and their places, a JSON array.
    pub widgets: serde_json::Value,
    pub created_by: String,
    pub created_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

fn encode_widgets(widgets: &serde_json::Value) -> Result<String, StoreError> {
    if !widgets.is_array() {
        return Err(StoreError::Invalid("`widgets` must be an array".into()));
    }
    let encoded = widgets.to_string();
    if encoded.len() > MAX_WIDGETS_BYTES {
        return Err(StoreError::Invalid(format!("`widgets` is longer than {MAX_WIDGETS_BYTES} bytes")));
    }
    Ok(encoded)
}

fn dashboard_from_row(row: &AnyRow) -> Result<Dashboard, StoreError> {
    let id: String = row.try_get("id")?;
    let widgets: String = row.try_get("widgets")?;
    let widgets = serde_json::from_str(&widgets)
        .map_err(|e| StoreError::Corrupt(format!("dashboard {id} has widgets {widgets:?}: {e}")))?;
    Ok(Dashboard {
        id,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        widgets,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Makes a dashboard in a project.
    pub async fn create_dashboard(
        &self,
        project_id: &str,
        name: &str,
        widgets: serde_json::Value,
        created_by: &str,
    ) -> Result<Dashboard, StoreError> {
        let name = validate_name("name", name)?;
        let encoded = encode_widgets(&widgets)?;
        let now = now_ms();
        let dashboard = Dashboard {
            id: random_token("dsh_", 8),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            widgets,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_by: created_by.to_owned(),
            updated_at: now,
        };
        let inserted = sqlx::query(
            "INSERT INTO dashboards (id, project_id, name, widgets, created_by, created_at, updated_by, updated_at) \
             SELECT $1, p.id, $2, $3, $4, $5, $4, $5 FROM projects p WHERE p.id = $6",
        )
        .bind(&dashboard.id)
        .bind(&dashboard.name)
        .bind(encoded)
        .bind(&dashboard.created_by)
        .bind(now)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(dashboard)
    }

    /// A project's dashboards, oldest first.
    pub async fn dashboards(&self, project_id: &str) -> Result<Vec<Dashboard>, StoreError> {
        let rows = sqlx::query("SELECT * FROM dashboards WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dashboard_from_row).collect()
    }

    /// One dashboard of the project.
    pub async fn dashboard(&self, project_id: &str, id: &str) -> Result<Option<Dashboard>, StoreError> {
        let row = sqlx::query("SELECT * FROM dashboards WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(dashboard_from_row).transpose()
    }

    /// Replaces a dashboard's name and widgets; `None` if the project has no
    /// dashboard by that id.
    pub async fn update_dashboard(
        &self,
        project_id: &str,
        id: &str,
        name: &str,
        widgets: serde_json::Value,
        updated_by: &str,
    ) -> Result<Option<Dashboard>, StoreError> {
        let name = validate_name("name", name)?;
        let encoded = encode_widgets(&widgets)?;
        let updated = sqlx::query(
            "UPDATE dashboards SET name = $1, widgets = $2, updated_by = $3, updated_at = $4 \
             WHERE id = $5 AND project_id = $6",
        )
        .bind(name)
        .bind(encoded)
        .bind(updated_by)
        .bind(now_ms())
        .bind(id)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.dashboard(project_id, id).await
    }

    /// Deletes a dashboard of the project; `false` if it has none by that id.
    pub async fn delete_dashboard(&self, project_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM dashboards WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}
