-- The audit log (PostgreSQL): append-only; each entry's hash covers the one
-- before it, so an edited, removed or reordered entry breaks the chain.
CREATE TABLE IF NOT EXISTS audit_log (
    seq          BIGINT  NOT NULL PRIMARY KEY,
    at           BIGINT  NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    object       TEXT    NOT NULL,
    project_id   TEXT,
    source_ip    TEXT    NOT NULL,
    details      TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_log_project_idx ON audit_log (project_id, seq);
