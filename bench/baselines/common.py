"""Shared by the PostgreSQL and chDB baselines: arguments, CSV reading,
query timing, the JSON report and the plain-Python answers behind --check."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Sequence

COLUMNS = ("project_id", "ts", "type", "name", "anonymous_id", "session_id", "path", "referrer",
           "device", "browser", "value", "props", "error_type", "message", "stack")
QUERIES = ("pageviews_per_hour", "top_pages", "sessions_summary", "top_errors", "lcp_p75_per_page")
EXACT_ANSWERS = ("events", "pageviews", "top_page", "sessions", "top_error_count")
BATCH = 100  # rows per INSERT statement

Rows = Sequence[Sequence[Any]]


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--csv", required=True, help="events CSV: header row, then RFC 4180 rows")
    p.add_argument("--project", required=True, help="project_id the five questions are asked for")
    p.add_argument("--rounds", type=int, default=20, help="timed executions per query (after one warm-up)")
    p.add_argument("--insert-sample", type=int, default=None, metavar="ROWS",
                   help="first ROWS of the CSV for the 100-row INSERT measurement (default: all)")
    p.add_argument("--check", action="store_true",
                   help="recompute the answers in plain Python from the CSV; exit 1 on mismatch")
    return p.parse_args()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _reader(f: Any) -> Any:
    reader = csv.reader(f)
    header = next(reader)
    if tuple(header) != COLUMNS:
        raise SystemExit(f"unexpected CSV header: {header}")
    return reader


def read_rows(path: str, limit: int | None) -> list[list[str]]:
    """The first `limit` data rows (all when None), as strings."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(itertools.islice(_reader(f), limit))


def batches(rows: list, size: int = BATCH) -> list[list]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks of sorted xs (= percentile_cont)."""
    k = (len(xs) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def time_queries(run: Callable[[str], Rows], queries: dict[str, str], rounds: int) -> tuple[dict, dict[str, Rows]]:
    """Runs each query once to warm up, then `rounds` times (fewer, but at least 5, once a query has
    taken 30 s); wall ms including fetching the rows."""
    assert tuple(queries) == QUERIES
    stats, results = {}, {}
    for name, sql in queries.items():
        results[name] = run(sql)
        ms: list[float] = []
        for _ in range(rounds):
            if len(ms) >= 5 and sum(ms) > 30_000:
                break
            t = time.perf_counter()
            run(sql)
            ms.append((time.perf_counter() - t) * 1000)
        ms.sort()
        stats[name] = {"p50": round(percentile(ms, 0.5), 2), "p99": round(percentile(ms, 0.99), 2),
                       "max": round(ms[-1], 2), "samples": len(ms)}
        log(f"{name}: {stats[name]}")
    return stats, results


def answers(results: dict[str, Rows]) -> dict:
    """The comparison fields, from result rows shaped as both scripts' queries return them."""
    top_page, top_error, lcp = results["top_pages"][0], results["top_errors"][0], results["lcp_p75_per_page"][0]
    return {"pageviews": sum(r[1] for r in results["pageviews_per_hour"]),
            "top_page": [top_page[0], top_page[1]],
            "sessions": results["sessions_summary"][0][0],
            "top_error_count": top_error[2],
            "lcp_p75_top_page": [lcp[0], round(float(lcp[1]), 3)]}


def python_answers(path: str, project: str) -> dict:
    """The same answers computed in plain Python over the whole CSV (the queried range is all of it)."""
    events = pageviews = 0
    pages: Counter[str] = Counter()
    sessions: set[str] = set()
    errors: Counter[tuple[str, str]] = Counter()
    lcp: defaultdict[str, list[float]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in _reader(f):
            events += 1
            if row[0] != project:
                continue
            kind = row[2]
            if kind == "pageview":
                pageviews += 1
                pages[row[6]] += 1
                sessions.add(row[5])
            elif kind == "error":
                errors[(row[12], row[13])] += 1
            elif kind == "vital" and row[3] == "LCP":
                lcp[row[6]].append(float(row[10]))
    top_page = min(pages.items(), key=lambda kv: (-kv[1], kv[0]))
    lcp_page, values = min(lcp.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {"events": events, "pageviews": pageviews, "top_page": list(top_page), "sessions": len(sessions),
            "top_error_count": max(errors.values()),
            "lcp_p75_top_page": [lcp_page, round(percentile(sorted(values), 0.75), 3)]}


def report(args: argparse.Namespace, result: dict) -> None:
    """Prints the JSON result; with --check, compares it with python_answers and exits 1 on mismatch."""
    print(json.dumps(result), flush=True)
    if not args.check:
        return
    expected = python_answers(args.csv, args.project)
    got = {"events": result["events"], **result["answers"]}
    bad = [k for k in EXACT_ANSWERS if got[k] != expected[k]]
    log(f"check: python {expected}")
    log(f"check: lcp_p75_top_page python (percentile_cont) {expected['lcp_p75_top_page']}, "
        f"{result['system']} {got['lcp_p75_top_page']}")
    if bad:
        log("check FAILED: " + ", ".join(f"{k}: {got[k]} != {expected[k]}" for k in bad))
        sys.exit(1)
    log("check: OK (" + ", ".join(EXACT_ANSWERS) + ")")
