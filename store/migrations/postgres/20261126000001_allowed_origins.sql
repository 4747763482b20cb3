-- The browser origins a project's ingest accepts (PostgreSQL): one normalized
-- origin per line; empty accepts any.
ALTER TABLE projects ADD COLUMN IF NOT EXISTS allowed_origins TEXT NOT NULL DEFAULT '';
