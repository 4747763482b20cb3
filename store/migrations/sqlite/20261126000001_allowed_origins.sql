-- The browser origins a project's ingest accepts (SQLite): one normalized
-- origin per line; empty accepts any.
ALTER TABLE projects ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
