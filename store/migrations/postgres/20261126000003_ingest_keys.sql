-- Public ingest keys (PostgreSQL): several per project, each revocable (rotate:
-- add one, move the sites over, revoke the old), with an optional rate
-- limit in events per second and the last time it was used.
-- projects.ingest_key stays as the key a project was made with; from here
-- on this table is where keys are looked up.
CREATE TABLE IF NOT EXISTS ingest_keys (
    id                 TEXT    NOT NULL PRIMARY KEY,
    project_id         TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    rate_limit_per_s   BIGINT,
    created_at         BIGINT  NOT NULL,
    last_used_at       BIGINT,
    revoked_at         BIGINT
);

CREATE INDEX IF NOT EXISTS ingest_keys_project_idx ON ingest_keys (project_id);

INSERT INTO ingest_keys (id, project_id, key, name, created_at)
    SELECT 'ik_' || substr(ingest_key, 4, 16), id, ingest_key, 'default', created_at FROM projects;
