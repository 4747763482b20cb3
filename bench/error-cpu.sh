#!/usr/bin/env bash
# Server CPU per error event: runs `sightline serve` (embedded) under
# `ingest-load --errors` and reads the server's utime + stime from
# /proc before and after the load (the whole server, then each thread
# group: HTTP and ingest on tokio-rt-worker, the dataflow on timely:work,
# the archive-writer). Several binaries are measured in
# alternating rounds (this machine drifts by ±10 % between runs).
# With --rate, every build is offered the same events per second (the
# pipeline's per-tick work is then shared by as many events in each).
# Usage: bench/error-cpu.sh [--unique-stacks] [--rate EVENTS_PER_S] [--rounds N] [--seconds S] BINARY...
set -euo pipefail
cd "$(dirname "$0")/.."
unique=()
rate=0
rounds=3
seconds=20
while [ $# -gt 0 ]; do
  case $1 in
    --unique-stacks) unique=(--unique-stacks); shift ;;
    --rate) rate=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--unique-stacks] [--rate N] [--rounds N] [--seconds S] BINARY..." >&2; exit 2; }
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# utime + stime of each thread group (name without its number), one
# "name ticks" line each.
thread_ticks() {
  for task in /proc/"$1"/task/*; do
    name=$(sed -E 's/[-:]?[0-9]+$//' "$task/comm" | tr ' ' _)
    echo "$name $(awk '{print $14 + $15}' "$task/stat")"
  done | awk '{t[$1] += $2} END {for (n in t) print n, t[n]}' | sort
}
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    dir=$(mktemp -d)
    port=$(( 20000 + RANDOM % 20000 ))
    SIGHTLINE_ADMIN_TOKEN=bench-token SIGHTLINE_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" &
    pid=$!
    until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
    before=$(cpu_ticks $pid)
    threads_before=$(thread_ticks $pid)
    result=$(${BENCH:-target/release/ingest-load} --url "http://127.0.0.1:$port" --admin-token bench-token \
      --seconds "$seconds" --rate "$rate" --errors "${unique[@]}")
    after=$(cpu_ticks $pid)
    threads_after=$(thread_ticks $pid)
    kill -TERM $pid; wait $pid || true
    rm -rf "$dir"
    events=$(echo "$result" | sed -E 's/.*"events_accepted":([0-9]+).*/\1/')
    echo "round $round $bin: $events events, $(awk -v t=$((after - before)) -v hz="$ticks" -v n="$events" \
      'BEGIN { printf "%.1f us server CPU per error event", t / hz * 1e6 / n }')"
    # Threads that ended during the load are not counted here.
    join <(echo "$threads_before") <(echo "$threads_after") | awk -v hz="$ticks" -v n="$events" \
      '{ printf "  %s: %.2f us per event\n", $1, ($3 - $2) / hz * 1e6 / n }'
  done
done
