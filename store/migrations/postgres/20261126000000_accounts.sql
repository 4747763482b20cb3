-- Organizations, users, their sessions and project memberships (PostgreSQL).
-- Every project belongs to an organization; the first one is made here, on
-- first start, and owns the projects made before organizations existed.

CREATE TABLE IF NOT EXISTS organizations (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

INSERT INTO organizations (id, name, created_at) VALUES ('org_default', 'Default', CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT));

ALTER TABLE projects ADD COLUMN IF NOT EXISTS organization_id TEXT REFERENCES organizations (id);
UPDATE projects SET organization_id = 'org_default' WHERE organization_id IS NULL;

-- Emails are stored lowercased. Passwords as argon2id PHC strings.
CREATE TABLE IF NOT EXISTS users (
    id                    TEXT    NOT NULL PRIMARY KEY,
    organization_id       TEXT    NOT NULL REFERENCES organizations (id),
    email                 TEXT    NOT NULL UNIQUE,
    name                  TEXT    NOT NULL,
    password_hash         TEXT    NOT NULL,
    is_owner              BIGINT  NOT NULL DEFAULT 0,
    must_change_password  BIGINT  NOT NULL DEFAULT 0,
    created_at            BIGINT  NOT NULL
);

-- Only the SHA-256 of a session token is stored.
CREATE TABLE IF NOT EXISTS sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    token_hash    TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);

CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);

CREATE TABLE IF NOT EXISTS members (
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE INDEX IF NOT EXISTS members_user_id_idx ON members (user_id);
