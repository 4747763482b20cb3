"""Gathers one bench/run.sh run (its work folder) into bench/results/<date>-comparison[-quick].json and the
side-by-side table of bench/README.md (between the markers of its mode).

Usage: python3 bench/report.py WORK_DIR quick|full
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import shutil
import sys

QUESTIONS = ["pageviews_per_hour", "top_pages", "sessions_summary", "top_errors", "lcp_p75_per_page"]
# The floors: what each figure must reach.
FLOORS = {
    "sustained": 260_000,
    "event_to_view_p99_ms": 100.0,
    "query_p99_ms": 5.0,
    "rss_at_10m_bytes": 1 << 30,
}


def load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def resident_kib(checkpoint: dict) -> float:
    """Resident memory with the checkpoint's events held: once settled (the allocator has given back what the
    last burst freed) when the run measured it, else right after the questions."""
    return checkpoint.get("rss_settled_kib") or checkpoint["rss_kib"]


def memory(checkpoint: dict) -> str:
    settled = checkpoint.get("rss_settled_kib")
    after = num(checkpoint["rss_kib"] / 1024)
    if not settled:
        return after
    return f"{num(settled / 1024)} ({after} {checkpoint['rss_settle_seconds']:.0f} s before)"


def sustained(run: dict) -> float | None:
    """The highest ramp rate the run kept up with (offered: what a kept-up step achieved reads lower by its last
    acks' time)."""
    kept = [step for step in run["ramp"] if step["kept_up"]]
    return kept[-1]["offered_per_second"] if kept else None


def sustained_text(run: dict) -> str:
    """The sustained rate, as a lower bound when the ramp ran out of events before it fell behind."""
    bound = "" if run.get("ramp_fell_behind", True) else "≥ "
    return bound + num(sustained(run))


def achieved(run: dict) -> float | None:
    kept = [step for step in run["ramp"] if step["kept_up"]]
    return kept[-1]["events_per_second"] if kept else None


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:,.1f}×"


def speed(theirs: float, mine: float) -> str:
    """How many times faster (or slower) Sightline answered than the faster baseline."""
    return f"{theirs / mine:,.1f}× faster" if theirs >= mine else f"**{mine / theirs:,.1f}× slower**"


def rest(run: dict) -> str:
    """The closed-loop rate of the events left after the ramp, if any were (lowered by the profiler
    when one ran meanwhile)."""
    if not run["rest"]["events_sent"]:
        return "– (none left)"
    return num(run["rest"]["events_per_second"]) + (" (under the profiler)" if run.get("rest_profiled") else "")


def answers_agree(mine: dict, reference: dict) -> bool:
    """Exact counts agree; the LCP p75 of the top page within 1 % (Sightline's is read from an HDR
    histogram, the databases' are exact)."""
    exact = all(mine.get(k) == reference.get(k) for k in ("pageviews", "top_page", "sessions", "top_error_count"))
    (page, p75), (ref_page, ref_p75) = mine["lcp_p75_top_page"], reference["lcp_p75_top_page"]
    return exact and page == ref_page and abs(p75 - ref_p75) <= 0.01 * ref_p75


def main() -> None:
    work, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
    root = pathlib.Path(__file__).resolve().parent
    date = datetime.date.today().isoformat()
    sightline = {t: load(work / f"sightline-{t}.json") | load(work / f"sightline-{t}.server.json")
                 for t in ("embedded", "nats")}
    pg, ch = load(work / "postgres.json"), load(work / "chdb.json")
    js = load(work / "jetstream.json")
    events = sightline["embedded"]["events"]
    results = {"date": date, "mode": mode, "events": events, "sightline": sightline,
               "postgresql": pg, "chdb": ch, "jetstream": js}
    stem = f"{date}-comparison" if mode == "full" else f"{date}-comparison-quick"
    (root / "results" / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    for artifact, suffix in (("profile.txt", "profile.txt"), ("flamegraph.svg", "flamegraph.svg")):
        if (work / artifact).exists() and (work / artifact).stat().st_size > 0:
            shutil.copy(work / artifact, root / "results" / f"{stem}-{suffix}")

    emb, nats = sightline["embedded"], sightline["nats"]
    last = {t: s["checkpoints"][-1] for t, s in sightline.items()}
    best_insert = max(pg["insert_100_events_per_s"], ch["insert_100_events_per_s"])
    rows = [
        "| | Sightline, embedded | Sightline, NATS | PostgreSQL | ClickHouse (chDB) | Sightline embedded against the better baseline |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| **events stored per second**, batches of 100 (Sightline: HTTP, every view on, highest ramp step kept up with; "
        f"databases: 100-row INSERTs) | **{sustained_text(emb)}** | {sustained_text(nats)} "
        f"| {num(pg['insert_100_events_per_s'])} (4 connections) | {num(ch['insert_100_events_per_s'])} "
        f"| {ratio(sustained(emb), best_insert)} |",
        f"| as fast as it takes them (Sightline: the events left after the ramp; databases: bulk load) | {rest(emb)} "
        f"| {rest(nats)} | {num(pg['bulk_events_per_s'])} (COPY) "
        f"| {num(ch['bulk_events_per_s'])} (file()) | |",
    ]
    for q in QUESTIONS:
        mine = [s["queries_ms"][q]["p99"] for s in last.values()]
        theirs = [pg["queries_ms"][q]["p99"], ch["queries_ms"][q]["p99"]]
        rows.append(f"| `{q}` p99, ms | **{num(mine[0], 2)}** | {num(mine[1], 2)} | {num(theirs[0], 1)} | {num(theirs[1], 1)} "
                    f"| {speed(min(theirs), mine[0])} |")
    e2v = {t: s["event_to_view_ms"] for t, s in sightline.items()}
    rows += [
        f"| event-to-view p50 / p99, ms, at half the sustained rate | {num(e2v['embedded']['p50'], 1)} / **{num(e2v['embedded']['p99'], 1)}** "
        f"| {num(e2v['nats']['p50'], 1)} / {num(e2v['nats']['p99'], 1)} | – | – | |",
        f"| resident memory with {events:,} events held, MiB, settled (right after the questions, seconds before) "
        f"| **{memory(last['embedded'])}** | {memory(last['nats'])} | – | – | |",
        f"| bytes per event on disk | {num(emb['data_dir_bytes'] / events, 1)} | {num(nats['data_dir_bytes'] / events, 1)} "
        f"| {num(pg['bytes_per_event'], 1)} | {num(ch['bytes_per_event'], 1)} | |",
        f"| restart to ready (replaying everything), s | {num(emb['restart_to_ready_ms'] / 1000, 1)} "
        f"| {num(nats['restart_to_ready_ms'] / 1000, 1)} | – | – | |",
        f"| same answers to the five questions as PostgreSQL | {'yes' if answers_agree(last['embedded']['answers'], pg['answers']) else '**no**'} "
        f"| {'yes' if answers_agree(last['nats']['answers'], pg['answers']) else '**no**'} | – "
        f"| {'yes' if answers_agree(ch['answers'], pg['answers']) else '**no**'} | |",
    ]
    ceiling = min(js["publish_per_second"], js["consume_per_second"])
    nats_rate = sustained(nats) or 0
    slowest = max(max(s["queries_ms"][q]["p99"] for q in s["queries_ms"]) for s in last.values())
    floors = [
        "| floor (issue 9) | measured | met |",
        "| --- | --- | --- |",
        f"| embedded, HTTP, batches of 100: ≥ {FLOORS['sustained']:,} events/s | {sustained_text(emb)} kept up with "
        f"({num(achieved(emb))} achieved over the step) "
        f"| {'yes' if (sustained(emb) or 0) >= FLOORS['sustained'] else 'no'} |",
        f"| event-to-view p99 < {FLOORS['event_to_view_p99_ms']:.0f} ms at half that rate | {num(e2v['embedded']['p99'], 1)} ms "
        f"| {'yes' if e2v['embedded']['p99'] < FLOORS['event_to_view_p99_ms'] else 'no'} |",
        f"| every dashboard query < {FLOORS['query_p99_ms']:.0f} ms p99 at {events:,} events | slowest {num(slowest, 2)} ms "
        f"| {'yes' if slowest < FLOORS['query_p99_ms'] else 'no'} |",
        f"| < 1 GiB resident at {events:,} events | {memory(last['embedded'])} MiB "
        f"| {'yes' if resident_kib(last['embedded']) * 1024 < FLOORS['rss_at_10m_bytes'] else 'no'} |",
        f"| NATS mode ≥ half the raw JetStream ceiling (publish {num(js['publish_per_second'])}/s, "
        f"consume {num(js['consume_per_second'])}/s, {js['message_bytes']}-byte messages with acks) "
        f"| {num(nats_rate)} ({ratio(nats_rate, ceiling)} of the lower) | {'yes' if nats_rate >= ceiling / 2 else 'no'} |",
    ]
    checkpoints = ["| events held | " + " | ".join(f"`{q}`" for q in QUESTIONS) + " | resident MiB |",
                   "| --- |" + " --- |" * (len(QUESTIONS) + 1)]
    for c in emb["checkpoints"]:
        checkpoints.append(f"| {c['events_held']:,} | " + " | ".join(num(c["queries_ms"][q]["p99"], 2) for q in QUESTIONS)
                           + f" | {memory(c)} |")
    section = "\n".join([
        f"### {date}, `bench/run.sh {mode}`: {events:,} events, {pg['version'].split()[0]} PostgreSQL, {ch['version']}",
        "",
        *rows,
        "",
        *floors,
        "",
        "Sightline embedded, p99 of the five questions (ms) as events accumulate:",
        "",
        *checkpoints,
        "",
        f"Raw figures: `results/{stem}.json`.",
    ])
    readme = root / "README.md"
    text = readme.read_text()
    begin, end = f"<!-- comparison-{mode}:begin -->", f"<!-- comparison-{mode}:end -->"
    block = f"{begin}\n{section}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.replace("\n## ", f"\n{block}\n\n## ", 1)
    readme.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
