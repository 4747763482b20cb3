-- Alerting (PostgreSQL): a project's channels and alert rules, each rule's
-- incidents (firing to resolved), and the deliveries: the outbox while
-- pending, the history once delivered or failed.
CREATE TABLE IF NOT EXISTS alert_channels (
    id                  TEXT    NOT NULL PRIMARY KEY,
    project_id          TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    -- The kind's configuration as JSON, secrets included (never served).
    config              TEXT    NOT NULL,
    rate_limit_per_min  BIGINT  NOT NULL,
    -- Why delivery stopped (a 4xx other than 408/429), until one succeeds.
    last_error          TEXT,
    last_error_at       BIGINT,
    created_by          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_channels_project_idx ON alert_channels (project_id, created_at);

CREATE TABLE IF NOT EXISTS alert_rules (
    id          TEXT    NOT NULL PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    -- Metric, comparison, threshold, window, filters ... as JSON.
    definition  TEXT    NOT NULL,
    -- The channel ids as a JSON array.
    channels    TEXT    NOT NULL,
    muted       BIGINT  NOT NULL DEFAULT 0,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_rules_project_idx ON alert_rules (project_id, created_at);

CREATE TABLE IF NOT EXISTS alert_incidents (
    id              TEXT    NOT NULL PRIMARY KEY,
    rule_id         TEXT    NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    project_id      TEXT    NOT NULL,
    opened_at       BIGINT  NOT NULL,
    opened_value    DOUBLE PRECISION NOT NULL,
    resolved_at     BIGINT,
    resolved_value  DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS alert_incidents_rule_idx ON alert_incidents (rule_id, opened_at);

CREATE TABLE IF NOT EXISTS alert_deliveries (
    id               TEXT    NOT NULL PRIMARY KEY,
    project_id       TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Kept when the rule goes: the history stays.
    rule_id          TEXT,
    channel_id       TEXT    NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    incident_id      TEXT,
    -- firing, resolved or test.
    state            TEXT    NOT NULL,
    -- The notification as JSON.
    payload          TEXT    NOT NULL,
    -- pending, delivered or failed.
    status           TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due_idx ON alert_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS alert_deliveries_rule_idx ON alert_deliveries (rule_id, created_at);

-- The issue a Jira or GitHub channel made for an incident, which its
-- resolve comments on.
CREATE TABLE IF NOT EXISTS alert_issue_refs (
    incident_id  TEXT  NOT NULL,
    channel_id   TEXT  NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    issue_ref    TEXT  NOT NULL,
    PRIMARY KEY (incident_id, channel_id)
);
