"""PostgreSQL baseline: 100-row INSERTs from 4 connections, COPY of the whole CSV,
on-disk size, and the five dashboard queries. One JSON object on stdout."""

from __future__ import annotations

import getpass
import itertools
import multiprocessing
import time
from typing import Any

import psycopg

from common import BATCH, COLUMNS, Rows, answers, batches, log, parse_args, read_rows, report, time_queries

TABLE = "bench_events"
CONNECTIONS = 4
NULLABLE = ("name", "referrer", "value", "props", "error_type", "message", "stack")
SCHEMA = f"""
CREATE TABLE {TABLE} (
    project_id text NOT NULL, ts bigint NOT NULL, type text NOT NULL, name text,
    anonymous_id text, session_id text, path text, referrer text, device text, browser text,
    value double precision, props jsonb, error_type text, message text, stack text);
CREATE INDEX {TABLE}_project_type_ts ON {TABLE} (project_id, type, ts);
CREATE INDEX {TABLE}_vitals ON {TABLE} (project_id, name, ts) WHERE type = 'vital'
"""
COLUMN_LIST = ", ".join(COLUMNS)
COPY = (f"COPY {TABLE} ({COLUMN_LIST}) FROM STDIN "
        f"(FORMAT csv, HEADER, FORCE_NULL ({', '.join(NULLABLE)}))")
RANGE = "project_id = %(p)s AND ts >= %(lo)s AND ts < %(hi)s"
QUERIES = {
    "pageviews_per_hour": f"""
        SELECT ts / 3600000 * 3600000 AS bucket, count(*) AS pageviews, count(DISTINCT anonymous_id) AS visitors
        FROM {TABLE} WHERE {RANGE} AND type = 'pageview'
        GROUP BY bucket ORDER BY bucket""",
    "top_pages": f"""
        SELECT path, count(*) AS pageviews, count(DISTINCT anonymous_id) AS visitors
        FROM {TABLE} WHERE {RANGE} AND type = 'pageview'
        GROUP BY path ORDER BY pageviews DESC, path LIMIT 20""",
    "sessions_summary": f"""
        SELECT count(*) AS sessions, avg((n = 1)::int) AS bounce_rate,
               avg(dur) AS avg_duration_ms, avg(n) AS pages_per_session
        FROM (SELECT count(*) AS n, max(ts) - min(ts) AS dur
              FROM {TABLE} WHERE {RANGE} AND type = 'pageview' GROUP BY session_id) s""",
    "top_errors": f"""
        SELECT error_type, message, count(*) AS events, count(DISTINCT anonymous_id) AS users, max(ts) AS last_seen
        FROM {TABLE} WHERE {RANGE} AND type = 'error'
        GROUP BY error_type, message ORDER BY events DESC, error_type, message LIMIT 20""",
    "lcp_p75_per_page": f"""
        SELECT path, percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS p75, count(*) AS samples
        FROM {TABLE} WHERE {RANGE} AND type = 'vital' AND name = 'LCP'
        GROUP BY path ORDER BY samples DESC, path LIMIT 20""",
}


def conninfo() -> str:
    """The first of the users postgres and the OS user that can connect."""
    error: Exception | None = None
    for user in ("postgres", getpass.getuser()):
        info = f"host=127.0.0.1 port=5432 dbname=test user={user}"
        try:
            psycopg.connect(info).close()
            return info
        except psycopg.OperationalError as e:
            error = e
    raise SystemExit(f"cannot connect to PostgreSQL: {error}")


def create_table(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    for statement in SCHEMA.split(";"):
        conn.execute(statement)


def typed(row: list[str]) -> list:
    values: list = [v or None for v in row]
    values[1] = int(row[1])
    values[10] = float(row[10]) if row[10] else None
    return values


_STATEMENTS: list[bytes] = []


def _insert_worker(info: str, k: int, barrier: Any) -> None:
    """Sends every CONNECTIONS-th statement of _STATEMENTS (inherited by fork) once all workers
    are connected."""
    with psycopg.connect(info, autocommit=True) as conn:
        barrier.wait()
        for statement in _STATEMENTS[k::CONNECTIONS]:
            conn.execute(statement)


def insert_rate(info: str, rows: list[list]) -> float:
    """Rows/s of 100-row multi-row INSERT statements (one per transaction) sent from CONNECTIONS
    processes, each with its own connection. The statements are rendered with their values before
    the clock starts, so the clients cost about what a compiled application's would, and the rate
    is PostgreSQL's, not Python's."""
    global _STATEMENTS
    placeholders = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    with psycopg.connect(info) as conn, psycopg.ClientCursor(conn) as cur:
        _STATEMENTS = [
            cur.mogrify(f"INSERT INTO {TABLE} ({COLUMN_LIST}) VALUES " + ", ".join([placeholders] * len(chunk)),
                        list(itertools.chain.from_iterable(chunk))).encode()
            for chunk in batches(rows)
        ]
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(CONNECTIONS + 1)
    workers = [fork.Process(target=_insert_worker, args=(info, k, barrier)) for k in range(CONNECTIONS)]
    for worker in workers:
        worker.start()
    barrier.wait()
    t0 = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - t0
    if any(worker.exitcode != 0 for worker in workers):
        raise SystemExit("an INSERT worker failed")
    return len(rows) / elapsed


def main() -> None:
    args = parse_args(__doc__)
    info = conninfo()
    with psycopg.connect(info, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        try:
            sample = [typed(r) for r in read_rows(args.csv, args.insert_sample)]
            create_table(conn)
            insert_per_s = insert_rate(info, sample)
            log(f"{len(sample)} rows by {BATCH}-row INSERTs over {CONNECTIONS} connections: {insert_per_s:,.0f}/s")

            create_table(conn)
            with conn.cursor() as cur:
                t0 = time.perf_counter()
                with cur.copy(COPY) as copy, open(args.csv, "rb") as f:
                    while data := f.read(1 << 20):
                        copy.write(data)
                bulk_s = time.perf_counter() - t0
                events = cur.rowcount
            log(f"COPY {events} rows: {bulk_s:.2f} s ({events / bulk_s:,.0f}/s)")
            t0 = time.perf_counter()
            conn.execute(f"VACUUM (ANALYZE) {TABLE}")
            log(f"VACUUM (ANALYZE), not counted: {time.perf_counter() - t0:.2f} s")
            size = conn.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()[0]

            lo, hi = conn.execute(f"SELECT min(ts), max(ts) + 1 FROM {TABLE}").fetchone()
            params = {"p": args.project, "lo": lo, "hi": hi}

            def run(sql: str) -> Rows:
                return conn.execute(sql, params).fetchall()

            stats, results = time_queries(run, QUERIES, args.rounds)
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    report(args, {
        "system": "postgresql", "version": version, "events": events,
        "insert_100_events_per_s": round(insert_per_s), "bulk_events_per_s": round(events / bulk_s),
        "bytes_per_event": round(size / events, 1), "queries_ms": stats,
        "answers": answers(results),
    })


if __name__ == "__main__":
    main()
