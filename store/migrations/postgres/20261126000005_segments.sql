-- Saved filters (segments) of a project (PostgreSQL): a name and the filters as a
-- JSON object of parameter name to value.
CREATE TABLE IF NOT EXISTS segments (
    id          TEXT    NOT NULL PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    filters     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS segments_project_idx ON segments (project_id, created_at);
