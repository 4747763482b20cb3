//! Alerting's records: channels (their configs, secrets included, as the
//! alerting crate's JSON), rules (their definitions as JSON), incidents,
//! and deliveries, which are the outbox while pending and the history once
//! delivered or failed. An incident opens or resolves in the same
//! transaction as its deliveries are queued, so a restart never loses one.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms, random_token, validate_name};

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// `ch_` + 16 hex characters.
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub kind: String,
    /// The kind's configuration, secrets included.
    pub config: serde_json::Value,
    pub rate_limit_per_min: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `al_` + 16 hex characters.
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub definition: serde_json::Value,
    pub channels: Vec<String>,
    pub muted: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    pub rule_id: String,
    pub project_id: String,
    pub opened_at: i64,
    pub opened_value: f64,
    pub resolved_at: Option<i64>,
    pub resolved_value: Option<f64>,
}

/// A delivery to make: one per channel of a state change, or a test.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub channel_id: String,
    /// `firing`, `resolved` or `test`.
    pub state: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(StoreError::Corrupt(format!("delivery status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `dl_` + 16 hex characters; also the receiver's idempotency key.
    pub id: String,
    pub project_id: String,
    pub rule_id: Option<String>,
    pub channel_id: String,
    pub incident_id: Option<String>,
    pub state: String,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

fn json(row: &AnyRow, column: &str, id: &str) -> Result<serde_json::Value, StoreError> {
    let raw: String = row.try_get(column)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{id} has {column} {raw:?}: {e}")))
}

fn channel_from_row(row: &AnyRow) -> Result<Channel, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(Channel {
        config: json(row, "config", &id)?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        rate_limit_per_min: row.try_get("rate_limit_per_min")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        id,
    })
}

fn rule_from_row(row: &AnyRow) -> Result<Rule, StoreError> {
    let id: String = row.try_get("id")?;
    let channels = serde_json::from_value(json(row, "channels", &id)?)
        .map_err(|e| StoreError::Corrupt(format!("{id} has channels that are not ids: {e}")))?;
    Ok(Rule {
        definition: json(row, "definition", &id)?,
        channels,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        muted: row.try_get::<i64, _>("muted")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        id,
    })
}

fn incident_from_row(row: &AnyRow) -> Result<Incident, StoreError> {
    Ok(Incident {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        project_id: row.try_get("project_id")?,
        opened_at: row.try_get("opened_at")?,
        opened_value: row.try_get("opened_value")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_value: row.try_get("resolved_value")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(Delivery {
        payload: json(row, "payload", &id)?,
        status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
        project_id: row.try_get("project_id")?,
        rule_id: row.try_get("rule_id")?,
        channel_id: row.try_get("channel_id")?,
        incident_id: row.try_get("incident_id")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        id,
    })
}

/// Queues deliveries inside a transaction.
async fn queue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: &str,
    rule_id: Option<&str>,
    incident_id: Option<&str>,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let id = random_token("dl_", 8);
        sqlx::query(
            "INSERT INTO alert_deliveries (id, project_id, rule_id, channel_id, incident_id, state, payload, status, \
             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(rule_id)
        .bind(&d.channel_id)
        .bind(incident_id)
        .bind(&d.state)
        .bind(d.payload.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

impl Store {
    /// Adds a channel to a project.
    pub async fn create_channel(
        &self,
        project_id: &str,
        name: &str,
        kind: &str,
        config: &serde_json::Value,
        rate_limit_per_min: i64,
        created_by: &str,
    ) -> Result<Channel, StoreError> {
        let name = validate_name("name", name)?;
        let channel = Channel {
            id: random_token("ch_", 8),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            config: config.clone(),
            rate_limit_per_min,
            last_error: None,
            last_error_at: None,
            created_by: created_by.to_owned(),
            created_at: now_ms(),
        };
        let inserted = sqlx::query(
            "INSERT INTO alert_channels (id, project_id, name, kind, config, rate_limit_per_min, created_by, created_at) \
             SELECT $1, p.id, $2, $3, $4, $5, $6, $7 FROM projects p WHERE p.id = $8",
        )
        .bind(&channel.id)
        .bind(&channel.name)
        .bind(&channel.kind)
        .bind(channel.config.to_string())
        .bind(rate_limit_per_min)
        .bind(created_by)
        .bind(channel.created_at)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(channel)
    }

    /// A project's channels, oldest first.
    pub async fn channels(&self, project_id: &str) -> Result<Vec<Channel>, StoreError> {
        let rows = sqlx::query("SELECT * FROM alert_channels WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// One channel by id, whatever its project (for the delivery worker).
    pub async fn channel_by_id(&self, id: &str) -> Result<Option<Channel>, StoreError> {
        let row = sqlx::query("SELECT * FROM alert_channels WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// One channel of the project.
    pub async fn channel(&self, project_id: &str, id: &str) -> Result<Option<Channel>, StoreError> {
        Ok(self.channel_by_id(id).await?.filter(|c| c.project_id == project_id))
    }

    /// Replaces a channel's name, config and rate limit; `None` if the
    /// project has no channel by that id.
    pub async fn update_channel(
        &self,
        project_id: &str,
        id: &str,
        name: &str,
        config: &serde_json::Value,
        rate_limit_per_min: i64,
    ) -> Result<Option<Channel>, StoreError> {
        let name = validate_name("name", name)?;
        let updated = sqlx::query(
            "UPDATE alert_channels SET name = $1, config = $2, rate_limit_per_min = $3, last_error = NULL, \
             last_error_at = NULL WHERE id = $4 AND project_id = $5",
        )
        .bind(name)
        .bind(config.to_string())
        .bind(rate_limit_per_min)
        .bind(id)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.channel(project_id, id).await
    }

    /// Deletes a channel (its pending deliveries with it); `false` if the
    /// project has none by that id.
    pub async fn delete_channel(&self, project_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM alert_channels WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Notes why a channel stopped delivering, or clears it (`None`).
    pub async fn set_channel_error(&self, id: &str, error: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE alert_channels SET last_error = $1, last_error_at = $2 WHERE id = $3")
            .bind(error)
            .bind(error.map(|_| now_ms()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds an alert rule to a project.
    pub async fn create_rule(
        &self,
        project_id: &str,
        name: &str,
        definition: &serde_json::Value,
        channels: &[String],
        muted: bool,
        created_by: &str,
    ) -> Result<Rule, StoreError> {
        let name = validate_name("name", name)?;
        let now = now_ms();
        let rule = Rule {
            id: random_token("al_", 8),
            project_id: project_id.to_owned(),
            name: name.to_owned(),
            definition: definition.clone(),
            channels: channels.to_vec(),
            muted,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let inserted = sqlx::query(
            "INSERT INTO alert_rules (id, project_id, name, definition, channels, muted, created_by, created_at, \
             updated_at) SELECT $1, p.id, $2, $3, $4, $5, $6, $7, $7 FROM projects p WHERE p.id = $8",
        )
        .bind(&rule.id)
        .bind(&rule.name)
        .bind(definition.to_string())
        .bind(serde_json::to_string(channels).expect("ids serialize"))
        .bind(i64::from(muted))
        .bind(created_by)
        .bind(now)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("project {project_id:?}")));
        }
        Ok(rule)
    }

    /// A project's rules, oldest first.
    pub async fn rules(&self, project_id: &str) -> Result<Vec<Rule>, StoreError> {
        let rows = sqlx::query("SELECT * FROM alert_rules WHERE project_id = $1 ORDER BY created_at, id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// Every rule of every project (what the alert engine starts from).
    pub async fn all_rules(&self) -> Result<Vec<Rule>, StoreError> {
        let rows = sqlx::query("SELECT * FROM alert_rules ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// One rule of the project.
    pub async fn rule(&self, project_id: &str, id: &str) -> Result<Option<Rule>, StoreError> {
        let row = sqlx::query("SELECT * FROM alert_rules WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    /// Replaces a rule's name, definition, channels and mute; `None` if
    /// the project has no rule by that id.
    pub async fn update_rule(
        &self,
        project_id: &str,
        id: &str,
        name: &str,
        definition: &serde_json::Value,
        channels: &[String],
        muted: bool,
    ) -> Result<Option<Rule>, StoreError> {
        let name = validate_name("name", name)?;
        let updated = sqlx::query(
            "UPDATE alert_rules SET name = $1, definition = $2, channels = $3, muted = $4, updated_at = $5 \
             WHERE id = $6 AND project_id = $7",
        )
        .bind(name)
        .bind(definition.to_string())
        .bind(serde_json::to_string(channels).expect("ids serialize"))
        .bind(i64::from(muted))
        .bind(now_ms())
        .bind(id)
        .bind(project_id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.rule(project_id, id).await
    }

    /// Deletes a rule and its incidents (its deliveries stay, as history);
    /// `false` if the project has none by that id.
    pub async fn delete_rule(&self, project_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM alert_rules WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// A new incident's id (`inc_` + 16 hex characters), made before the
    /// incident so its deliveries can name it.
    pub fn new_incident_id() -> String {
        random_token("inc_", 8)
    }

    /// Opens incident `id` of a rule and queues its deliveries, at once.
    pub async fn open_incident(
        &self,
        rule: &Rule,
        id: &str,
        at: i64,
        value: f64,
        deliveries: &[NewDelivery],
    ) -> Result<Incident, StoreError> {
        let incident = Incident {
            id: id.to_owned(),
            rule_id: rule.id.clone(),
            project_id: rule.project_id.clone(),
            opened_at: at,
            opened_value: value,
            resolved_at: None,
            resolved_value: None,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO alert_incidents (id, rule_id, project_id, opened_at, opened_value) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&incident.id)
        .bind(&incident.rule_id)
        .bind(&incident.project_id)
        .bind(at)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        queue(&mut tx, &rule.project_id, Some(&rule.id), Some(&incident.id), deliveries, now_ms()).await?;
        tx.commit().await?;
        Ok(incident)
    }

    /// Resolves an open incident and queues its deliveries, at once;
    /// `false` if it was not open.
    pub async fn resolve_incident(
        &self,
        incident: &Incident,
        at: i64,
        value: f64,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE alert_incidents SET resolved_at = $1, resolved_value = $2 WHERE id = $3 AND resolved_at IS NULL",
        )
        .bind(at)
        .bind(value)
        .bind(&incident.id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        queue(&mut tx, &incident.project_id, Some(&incident.rule_id), Some(&incident.id), deliveries, now_ms()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every open incident (at most one per rule).
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query("SELECT * FROM alert_incidents WHERE resolved_at IS NULL ORDER BY opened_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// A rule's incidents, newest first.
    pub async fn incidents(&self, rule_id: &str, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query("SELECT * FROM alert_incidents WHERE rule_id = $1 ORDER BY opened_at DESC LIMIT $2")
            .bind(rule_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// Queues a test delivery to a channel.
    pub async fn queue_test_delivery(&self, project_id: &str, delivery: &NewDelivery) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids = queue(&mut tx, project_id, None, None, std::slice::from_ref(delivery), now_ms()).await?;
        tx.commit().await?;
        Ok(ids.into_iter().next().expect("one delivery queued"))
    }

    /// Pending deliveries due by `now`, oldest first.
    pub async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// When the next pending delivery is due, if any is.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_attempt_at) AS due FROM alert_deliveries WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("due")?)
    }

    /// Records an attempt: delivered, failed for good, or pending again
    /// until `next_attempt_at`.
    pub async fn record_attempt(
        &self,
        id: &str,
        status: DeliveryStatus,
        http_status: Option<i64>,
        error: Option<&str>,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let delivered_at = (status == DeliveryStatus::Delivered).then_some(now);
        sqlx::query(
            "UPDATE alert_deliveries SET status = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
             next_attempt_at = $4, delivered_at = $5 WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(http_status)
        .bind(error)
        .bind(next_attempt_at)
        .bind(delivered_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a delivery off without counting an attempt (a channel's rate
    /// limit).
    pub async fn postpone_delivery(&self, id: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alert_deliveries SET next_attempt_at = $1 WHERE id = $2")
            .bind(until)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A rule's deliveries, newest first.
    pub async fn rule_deliveries(
        &self,
        project_id: &str,
        rule_id: &str,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM alert_deliveries WHERE project_id = $1 AND rule_id = $2 ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(project_id)
        .bind(rule_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// One delivery of the project.
    pub async fn delivery(&self, project_id: &str, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query("SELECT * FROM alert_deliveries WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// The issue a channel made for an incident.
    pub async fn issue_ref(&self, incident_id: &str, channel_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT issue_ref FROM alert_issue_refs WHERE incident_id = $1 AND channel_id = $2")
            .bind(incident_id)
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("issue_ref")).transpose()?)
    }

    /// Remembers the issue a channel made for an incident.
    pub async fn remember_issue_ref(&self, incident_id: &str, channel_id: &str, issue: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_issue_refs (incident_id, channel_id, issue_ref) VALUES ($1, $2, $3) \
             ON CONFLICT (incident_id, channel_id) DO UPDATE SET issue_ref = excluded.issue_ref",
        )
        .bind(incident_id)
        .bind(channel_id)
        .bind(issue)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
