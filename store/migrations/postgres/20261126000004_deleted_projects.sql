-- Projects deleted (PostgreSQL): their archived events are skipped from then on
-- (and leave the disk with their segments, at retention).
CREATE TABLE IF NOT EXISTS deleted_projects (
    id          TEXT    NOT NULL PRIMARY KEY,
    deleted_at  BIGINT  NOT NULL
);
