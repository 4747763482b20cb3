#!/usr/bin/env bash
# The whole comparison, in one run on this machine: Sightline (embedded, and
# with NATS JetStream) against PostgreSQL, ClickHouse in process (chDB) and
# raw JetStream, on the same seeded events. Writes
# bench/results/<date>-comparison[-quick].json and the table in bench/README.md.
#
# Usage: bench/run.sh [quick|full]   (make bench, make bench-full)
#   quick: 1M events, short ramp steps; about two minutes after the build.
#   full:  10M events, queries at 1M and 10M, a CPU profile of the embedded
#          load; about twenty minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
case $mode in
  quick) events=1000000 checkpoint=100000 rounds=20 ramp_from=140000 ramp_step=60000 step_s=1 latency_s=5
         insert_sample=50000 baseline_rounds=5 ceiling=300000 profile=0 ;;
  full)  events=10000000 checkpoint=1000000 rounds=100 ramp_from=140000 ramp_step=30000 step_s=5 latency_s=20
         insert_sample=1000000 baseline_rounds=20 ceiling=3000000 profile=1 ;;
  *) echo "usage: bench/run.sh [quick|full]" >&2; exit 2 ;;
esac

cargo build --release -p sightline -p sightline-bench
./scripts/services.sh >/dev/null
bench/baselines/install.sh
if [ $profile = 1 ] && ! command -v inferno-flamegraph >/dev/null; then
  cargo install --locked --quiet inferno
fi

work=target/bench/$mode
rm -rf "$work" && mkdir -p "$work"
BIN=target/release/sightline
TOKEN=bench-token
end_ms=$(( $(date +%s) / 60 * 60000 ))
$BIN loadgen --csv "$work/events.csv" --events $events --end-ms $end_ms > "$work/csv.json"
echo "bench: $events events written to $work/events.csv" >&2

# Timely workers: half the cores. The dataflow takes about a quarter of the
# server's CPU; the ingest threads, the view applier and the archive writer
# need the rest (on two cores, one worker kept up with 240k events/s where
# two, the default of one per core, kept up with 210k: bench/README.md).
workers=$(( $(nproc) / 2 )); [ $workers -ge 1 ] || workers=1
serve() { # serve DIR PORT EXTRA...: starts the server, prints its pid once it answers
  local dir=$1 port=$2; shift 2
  SIGHTLINE_ADMIN_TOKEN=$TOKEN SIGHTLINE_LOG=warn $BIN serve --listen 127.0.0.1:$port --data-dir "$dir" \
    --workers $workers "$@" \
    >/dev/null 2>>"$work/server.log" &
  local pid=$!
  until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
  echo $pid
}

stop() { # stop PID: SIGTERM, then waits for the process to end
  kill -TERM "$1"
  while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}

for transport in embedded nats; do
  dir=$(mktemp -d)
  port=$(( 20000 + RANDOM % 20000 ))
  extra=()
  stream="BENCH_$(date +%s)"
  if [ $transport = nats ]; then extra=(--nats nats://127.0.0.1:4222 --nats-stream "$stream"); fi
  pid=$(serve "$dir" $port "${extra[@]}")
  rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  profile_flag=$work/profiling-$transport
  profiling=()
  if [ $profile = 1 ] && [ $transport = embedded ]; then
    profiling=(--profile-flag "$profile_flag")
    # At most 30 s of the server's CPU while the bench sends the rest of the
    # events as fast as they are taken: not during the ramp, whose rates the
    # profiler's own CPU would lower.
    (while [ ! -f "$profile_flag" ]; do kill -0 $pid 2>/dev/null || exit 0; sleep 0.1; done
     # --no-buildid: no pass over the samples at the end, which took seconds
     # of CPU while the bench asked its questions.
     perf record -e cpu-clock -F 199 --call-graph dwarf,16384 --no-buildid -p $pid -o "$work/perf.data" \
       -- sleep 30 >/dev/null 2>&1 &
     perf_pid=$!
     while [ -f "$profile_flag" ] && kill -0 $perf_pid 2>/dev/null; do sleep 0.1; done
     kill -INT $perf_pid 2>/dev/null || true
     wait $perf_pid || true
     touch "$profile_flag.done") &
  fi
  target/release/sightline-bench --url "http://127.0.0.1:$port" --admin-token $TOKEN --events $events \
    --end-ms $end_ms --checkpoint $checkpoint --query-rounds $rounds --ramp-from $ramp_from --ramp-step $ramp_step \
    --step-seconds $step_s --latency-seconds $latency_s --server-pid $pid \
    "${profiling[@]}" > "$work/sightline-$transport.json"
  disk=$(du -sb "$dir" | cut -f1)
  stop $pid
  # Restart to ready: the whole archive replayed into the views.
  start=$(date +%s%N)
  pid=$(serve "$dir" $port "${extra[@]}")
  until curl -sf "127.0.0.1:$port/healthz" | grep -q '"caught_up":true'; do sleep 0.02; done
  restart_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  stop $pid
  rm -rf "$dir"
  if [ $transport = nats ]; then target/release/ingest-load --delete-nats-stream "$stream"; fi
  echo "{\"rss_idle_kib\":$rss_idle,\"restart_to_ready_ms\":$restart_ms,\"data_dir_bytes\":$disk}" \
    > "$work/sightline-$transport.server.json"
  echo "bench: sightline $transport done (restart $restart_ms ms)" >&2
done

target/release/jetstream-ceiling --messages $ceiling > "$work/jetstream.json"
for system in postgres chdb; do
  target/bench-venv/bin/python "bench/baselines/${system}_baseline.py" --csv "$work/events.csv" --project proj_0 \
    --rounds $baseline_rounds --insert-sample $insert_sample > "$work/$system.json"
  echo "bench: $system done" >&2
done

if [ -f "$work/perf.data" ]; then
  # --no-inline: resolving inlined frames through addr2line takes hours on a
  # dwarf profile; DEBUGINFOD_URLS empty: no lookups on a closed network.
  report() { DEBUGINFOD_URLS= perf report -i "$work/perf.data" --no-children --no-inline -g none --stdio "$@" 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed -E 's/[ -]+$//'; }
  { echo "CPU samples by thread:"; report --sort comm
    echo; echo "By thread and function (above 0.5 %):"; report --sort comm,symbol --percent-limit 0.5
  } > "$work/profile.txt"
  DEBUGINFOD_URLS= perf script -i "$work/perf.data" --no-inline 2>/dev/null | inferno-collapse-perf \
    | inferno-flamegraph --title "sightline serve, embedded, events as fast as taken, bench/run.sh full" > "$work/flamegraph.svg"
fi
python3 bench/report.py "$work" "$mode"
