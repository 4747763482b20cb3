#!/usr/bin/env bash
# Runs the ingest benchmark against a release build, in embedded and in NATS
# mode (page views for [seconds]), then embedded with a mix of every event
# type for 45 s (about 10 M events) followed by 100 timed requests to each
# query endpoint; writes bench/results/<date>.json. Usage: bench/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_OF_LOAD=${1:-20}
cargo build --release -p sightline -p sightline-bench
./scripts/services.sh >/dev/null
BIN=target/release/sightline
TOKEN=bench-token
out=bench/results/$(date -u +%F).json
echo "[" > "$out.tmp"
first=1
for mode in embedded nats mixed; do
  dir=$(mktemp -d)
  port=$(( 20000 + RANDOM % 20000 ))
  extra=()
  stream="BENCH_$(date +%s)"
  if [ "$mode" = nats ]; then extra=(--nats nats://127.0.0.1:4222 --nats-stream "$stream"); fi
  SIGHTLINE_ADMIN_TOKEN=$TOKEN SIGHTLINE_LOG=warn $BIN serve --listen 127.0.0.1:$port --data-dir "$dir" "${extra[@]}" &
  pid=$!
  until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
  rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  load=(--seconds "$SECONDS_OF_LOAD")
  if [ "$mode" = mixed ]; then load=(--seconds 45 --mixed --query-rounds 100); fi
  result=$(target/release/sightline-bench --url "http://127.0.0.1:$port" --admin-token $TOKEN "${load[@]}")
  rss_after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  rss_peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  # Restart to ready: replaying everything just ingested.
  start=$(date +%s%N)
  SIGHTLINE_ADMIN_TOKEN=$TOKEN SIGHTLINE_LOG=warn $BIN serve --listen 127.0.0.1:$port --data-dir "$dir" "${extra[@]}" &
  pid=$!
  until curl -sf "127.0.0.1:$port/healthz" | grep -q '"caught_up":true'; do sleep 0.02; done
  restart_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  kill -TERM $pid; wait $pid || true
  rm -rf "$dir"
  if [ "$mode" = nats ]; then target/release/sightline-bench --delete-nats-stream "$stream"; fi
  [ $first = 1 ] || echo "," >> "$out.tmp"
  first=0
  echo "{\"mode\":\"$mode\",\"rss_idle_kib\":$rss_idle,\"rss_after_kib\":$rss_after,\"rss_peak_kib\":$rss_peak,\"restart_to_caught_up_ms\":$restart_ms,\"load\":$result}" >> "$out.tmp"
  echo "$mode: $result rss_peak=${rss_peak}KiB restart=${restart_ms}ms" >&2
done
echo "]" >> "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
