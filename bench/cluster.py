#!/usr/bin/env python3
"""Sightline as a cluster on this machine: throughput with 1, 2 and 3 worker
processes, the bytes their timely exchange carried, and the recovery time
after one is killed.

For each process count, on loopback: one API node, then the load
generator's events published straight onto a fresh JetStream stream (as
fast as JetStream takes them), then the worker processes started; the
throughput is the events over the time from their start until the API
node's views hold every page view. Then one worker is killed with SIGKILL;
this script restarts every process that exits (as systemd would) and times
how long until the API node serves a new generation that has replayed
everything (its /healthz `generation` changes and `caught_up` is true).

Usage: bench/cluster.py [--events N] [--processes 1,2,3] [--recovery-events N,...]
Writes bench/results/<date>-cluster.json and prints a table for bench/README.md.
"""
import argparse
import csv
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sightline")
TOKEN = "bench-cluster-token"
NATS = "nats://127.0.0.1:4222"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


class Supervised:
    """A process started again whenever it exits."""

    def __init__(self, args, log):
        self.args, self.log, self.proc, self.starts = args, log, None, 0
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**os.environ, "SIGHTLINE_LOG": "warn"})
        self.starts += 1

    def restart_if_exited(self):
        if self.proc.poll() is not None:
            self.start()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def expected_pageviews(events, end_ms, work):
    path = os.path.join(work, "events.csv")
    subprocess.run([BIN, "loadgen", "--events", str(events), "--end-ms", str(end_ms), "--csv", path],
                   check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        reader = csv.DictReader(f)
        column = "type" if "type" in reader.fieldnames else reader.fieldnames[2]
        return sum(1 for row in reader if row[column] == "pageview")


def exchange_bytes(ports):
    """Bytes sent on every established connection to or from a timely port
    (on loopback both ends are listed, so each direction counts once)."""
    out = subprocess.run(["ss", "-tin", "state", "established"], capture_output=True, text=True).stdout
    total, lines = 0, out.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line[:1].isspace():
            continue  # a socket's details, read with its line below
        fields = line.split()
        try:
            local, peer = int(fields[-2].rsplit(":", 1)[1]), int(fields[-1].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        if local in ports or peer in ports:
            sent = re.search(r"bytes_sent:(\d+)", lines[i + 1])
            total += int(sent.group(1)) if sent else 0
    return total


def run(processes, events, end_ms, pageviews, work, log):
    stream = f"BENCHCL_{processes}_{int(time.time() * 1000)}"
    database = f"bench_cluster_{processes}_{int(time.time() * 1000)}"
    psql(f"CREATE DATABASE {database}")
    db = f"postgres://postgres@127.0.0.1:5432/{database}"
    api_port = free_port()
    base = f"http://127.0.0.1:{api_port}"
    api = Supervised([BIN, "api", "--listen", f"127.0.0.1:{api_port}", "--nats", NATS, "--nats-stream", stream,
                      "--database-url", db, "--data-dir", tempfile.mkdtemp(dir=work), "--admin-token", TOKEN], log)
    while True:
        try:
            get(f"{base}/healthz")
            break
        except OSError:
            time.sleep(0.05)
    report = json.loads(subprocess.run(
        [BIN, "loadgen", "--events", str(events), "--end-ms", str(end_ms), "--server", base, "--admin-token", TOKEN,
         "--nats", NATS, "--nats-stream", stream], check=True, capture_output=True, text=True).stdout)
    projects = [p["id"] for p in report["projects"]]
    rng = f"interval=day&from={end_ms - 90_000_000}&to={end_ms + 60_000}"

    def views_pageviews():
        return sum(get(f"{base}/api/v1/projects/{p}/pageviews?{rng}", TOKEN)["total"]["pageviews"] for p in projects)

    def views_sessions():
        srng = f"from={end_ms - 90_000_000}&to={end_ms + 60_000}"
        return sum(get(f"{base}/api/v1/projects/{p}/sessions/summary?{srng}", TOKEN)["sessions"] for p in projects)

    timely_ports = [free_port() for _ in range(processes)]
    peers = ",".join(f"127.0.0.1:{p}" for p in timely_ports)
    workers = []
    started = time.time()
    for i in range(processes):
        workers.append(Supervised([BIN, "worker", "--process", str(i), "--peers", peers, "--workers", "1",
                                   "--listen", f"127.0.0.1:{free_port()}", "--nats", NATS, "--nats-stream", stream,
                                   "--database-url", db, "--data-dir", tempfile.mkdtemp(dir=work)], log))
    while True:
        try:
            seen = views_pageviews()
        except OSError:
            seen = 0
        if seen >= pageviews:
            break
        if time.time() - started > 600:
            raise SystemExit(f"{processes} processes: the views hold {seen} of {pageviews} page views after 600 s")
        time.sleep(0.1)
    took = time.time() - started
    exchanged = exchange_bytes(set(timely_ports)) if processes > 1 else 0
    time.sleep(1)
    sessions_live = views_sessions()
    # Recovery: one worker killed, every process restarted as it exits.
    generation = get(f"{base}/healthz").get("generation")
    killed = time.time()
    workers[-1].kill9()
    while True:
        for w in workers:
            w.restart_if_exited()
        health = get(f"{base}/healthz")
        if health.get("generation") not in (None, generation) and health.get("caught_up"):
            break
        if time.time() - killed > 600:
            raise SystemExit(f"{processes} processes: no new generation 600 s after the kill")
        time.sleep(0.05)
    recovered = time.time() - killed
    assert views_pageviews() == pageviews, "the recovered views hold every page view once"
    sessions_replayed = views_sessions()
    for w in workers + [api]:
        w.stop()
    psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return {
        "processes": processes,
        "events": events,
        "seconds": round(took, 2),
        "events_per_second": round(events / took),
        "exchange_bytes": exchanged,
        "exchange_bytes_per_event": round(exchanged / events, 1),
        "recovery_seconds": round(recovered, 2),
        "sessions_live": sessions_live,
        "sessions_after_recovery": sessions_replayed,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--recovery-events", default="", help="more event counts to time recovery with 2 processes")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sightline-cluster-bench-")
    log = open(os.path.join(work, "processes.log"), "w")
    end_ms = int(time.time()) // 60 * 60_000
    results = []
    sizes = [(int(p), args.events) for p in args.processes.split(",")]
    sizes += [(2, int(n)) for n in args.recovery_events.split(",") if n]
    expected = {}
    for processes, events in sizes:
        if events not in expected:
            expected[events] = expected_pageviews(events, end_ms, work)
        result = run(processes, events, end_ms, expected[events], work, log)
        print(json.dumps(result), file=sys.stderr)
        results.append(result)
    date = datetime.date.today().isoformat()
    path = os.path.join(ROOT, "bench", "results", f"{date}-cluster.json")
    with open(path, "w") as f:
        json.dump({"date": date, "machine": f"{os.cpu_count()} cores", "results": results}, f, indent=2)
    print("| worker processes | events | events/s until the views hold them | timely exchange, bytes/event | recovery after kill -9 |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['processes']} | {r['events']:,} | {r['events_per_second']:,} | {r['exchange_bytes_per_event']} | "
              f"{r['recovery_seconds']} s |")


if __name__ == "__main__":
    main()
