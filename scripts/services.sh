#!/usr/bin/env bash
# Makes sure the services the tests talk to are listening: NATS with
# JetStream on 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432. Starts the
# machine's own installation of each when it is not up. Idempotent.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    listening "$port" && return 0
    sleep 0.5
  done
  echo "services: $name is not listening on 127.0.0.1:$port" >&2
  return 1
}

if ! listening 4222; then
  echo "services: starting nats-server with JetStream"
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    apt-get update -qq && apt-get install -y -qq nats-server
  fi
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for NATS 4222
fi

if ! listening 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432
fi
echo "services: NATS on 4222 and PostgreSQL on 5432 are up"
