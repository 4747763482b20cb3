"""ClickHouse baseline, in-process through chDB with a persistent session in a temp dir:
100-row INSERTs, bulk INSERT ... SELECT FROM file(), on-disk size, and the five
dashboard queries. One JSON object on stdout."""

from __future__ import annotations

import json
import shutil
import tempfile
import time

import chdb
from chdb.session import Session

from common import BATCH, COLUMNS, Rows, answers, batches, log, parse_args, read_rows, report, time_queries

TABLE = "bench_events"
# Plausible's events_v2 layout: site_id/user_id/session_id/timestamp, the same
# PARTITION BY / ORDER BY, its LowCardinality and codecs; value, props and the
# error columns are Sightline's.
SCHEMA = """
CREATE TABLE {table} (
    timestamp DateTime64(3, 'UTC') CODEC(Delta(8), LZ4),
    type LowCardinality(String),
    name LowCardinality(String),
    site_id LowCardinality(String),
    user_id UInt64,
    session_id UInt64,
    path String CODEC(ZSTD(3)),
    referrer String CODEC(ZSTD(3)),
    device LowCardinality(String),
    browser LowCardinality(String),
    value Float64,
    props String CODEC(ZSTD(3)),
    error_type LowCardinality(String),
    message String CODEC(ZSTD(3)),
    stack String CODEC(ZSTD(3))
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), user_id, timestamp)
"""
# The CSV columns as read, and the table's columns (in table order) computed from them,
# for both load paths.
RAW = ", ".join(f"{c} {'Int64' if c == 'ts' else 'String'}" for c in COLUMNS)
MAPPING = """fromUnixTimestamp64Milli(ts, 'UTC'), type, name, project_id, sipHash64(anonymous_id),
    sipHash64(session_id), path, referrer, device, browser, toFloat64OrZero(value), props, error_type,
    message, stack"""
RANGE = """site_id = {p:String} AND timestamp >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')
    AND timestamp < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"""
QUERIES = {
    "pageviews_per_hour": f"""
        SELECT intDiv(toUnixTimestamp64Milli(timestamp), 3600000) * 3600000 AS bucket,
               count() AS pageviews, count(DISTINCT user_id) AS visitors
        FROM {TABLE} WHERE {RANGE} AND type = 'pageview'
        GROUP BY bucket ORDER BY bucket""",
    "top_pages": f"""
        SELECT path, count() AS pageviews, count(DISTINCT user_id) AS visitors
        FROM {TABLE} WHERE {RANGE} AND type = 'pageview'
        GROUP BY path ORDER BY pageviews DESC, path LIMIT 20""",
    "sessions_summary": f"""
        SELECT count() AS sessions, avg(n = 1) AS bounce_rate,
               avg(dur) AS avg_duration_ms, avg(n) AS pages_per_session
        FROM (SELECT count() AS n,
                     toUnixTimestamp64Milli(max(timestamp)) - toUnixTimestamp64Milli(min(timestamp)) AS dur
              FROM {TABLE} WHERE {RANGE} AND type = 'pageview' GROUP BY session_id)""",
    "top_errors": f"""
        SELECT error_type, message, count() AS events, count(DISTINCT user_id) AS users,
               toUnixTimestamp64Milli(max(timestamp)) AS last_seen
        FROM {TABLE} WHERE {RANGE} AND type = 'error'
        GROUP BY error_type, message ORDER BY events DESC, error_type, message LIMIT 20""",
    "lcp_p75_per_page": f"""
        SELECT path, quantileExactInclusive(0.75)(value) AS p75, count() AS samples
        FROM {TABLE} WHERE {RANGE} AND type = 'vital' AND name = 'LCP'
        GROUP BY path ORDER BY samples DESC, path LIMIT 20""",
}


def literal(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert_rate(session: Session, rows: list[list[str]]) -> float:
    """Rows/s of 100-row INSERT statements (Values data through the same MAPPING as the bulk
    load) into a scratch table that is dropped afterwards. The statements are rendered before the
    clock starts, so the rate is ClickHouse's, not Python's."""
    scratch = f"{TABLE}_inserts"
    session.query(SCHEMA.format(table=scratch))
    statements = []
    for chunk in batches(rows):
        values = ", ".join(
            "(" + ", ".join(v if c == "ts" else literal(v) for c, v in zip(COLUMNS, row)) + ")" for row in chunk)
        statements.append(f"INSERT INTO {scratch} SELECT {MAPPING} FROM format(Values, '{RAW}', {literal(values)})")
    t0 = time.perf_counter()
    for statement in statements:
        session.query(statement)
    rate = len(rows) / (time.perf_counter() - t0)
    session.query(f"DROP TABLE {scratch} SYNC")
    return rate


def main() -> None:
    args = parse_args(__doc__)
    sample = read_rows(args.csv, args.insert_sample)
    path = tempfile.mkdtemp(prefix="chdb-bench-")
    session = Session(path)
    try:
        engine = session.query("SELECT version()", "TSVRaw").bytes().decode().strip()
        version = f"chdb {chdb.__version__} (ClickHouse {engine})"
        insert_per_s = insert_rate(session, sample)
        log(f"{len(sample)} rows by {BATCH}-row INSERTs: {insert_per_s:,.0f}/s")

        session.query(SCHEMA.format(table=TABLE))
        t0 = time.perf_counter()
        session.query(f"INSERT INTO {TABLE} SELECT {MAPPING} FROM file({literal(args.csv)}, CSVWithNames, '{RAW}')")
        bulk_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        session.query(f"OPTIMIZE TABLE {TABLE} FINAL")
        log(f"bulk load: {bulk_s:.2f} s; OPTIMIZE TABLE FINAL, not counted: {time.perf_counter() - t0:.2f} s")

        def run(sql: str, params: dict | None = None) -> Rows:
            return json.loads(session.query(sql, "JSONCompact", params=params).bytes())["data"]

        [[events, lo, hi]] = run(f"SELECT count(), toUnixTimestamp64Milli(min(timestamp)), "
                                 f"toUnixTimestamp64Milli(max(timestamp)) + 1 FROM {TABLE}")
        [[size]] = run("SELECT sum(bytes_on_disk) FROM system.parts "
                       f"WHERE active AND database = currentDatabase() AND table = '{TABLE}'")
        params = {"p": args.project, "lo": lo, "hi": hi}
        stats, results = time_queries(lambda sql: run(sql, params), QUERIES, args.rounds)
    finally:
        session.close()
        shutil.rmtree(path)
    report(args, {
        "system": "chdb", "version": version, "events": events,
        "insert_100_events_per_s": round(insert_per_s), "bulk_events_per_s": round(events / bulk_s),
        "bytes_per_event": round(size / events, 1), "queries_ms": stats,
        "answers": answers(results),
    })


if __name__ == "__main__":
    main()
