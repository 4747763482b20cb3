-- A project's dashboards (PostgreSQL): a name and its widgets with their places
-- on the grid, as the JSON array the query API validated.
CREATE TABLE IF NOT EXISTS dashboards (
    id          TEXT    NOT NULL PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    widgets     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_by  TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS dashboards_project_idx ON dashboards (project_id, created_at);
