-- Projects and their secret API keys (PostgreSQL).
-- Timestamps are BIGINT milliseconds since the Unix epoch.

CREATE TABLE IF NOT EXISTS projects (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    ingest_key  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS projects_created_at_idx ON projects (created_at, id);

CREATE TABLE IF NOT EXISTS secret_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    project_id    TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'admin')),
    secret_hash   TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

CREATE INDEX IF NOT EXISTS secret_keys_project_id_idx ON secret_keys (project_id);
