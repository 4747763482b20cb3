#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the baseline scripts run in, at
# target/bench-venv. Installs only when the venv is missing or
# requirements.txt changed since the last install. Usage: bench/baselines/install.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/bench-venv
req=bench/baselines/requirements.txt
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements.txt"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$venv/requirements.txt"
