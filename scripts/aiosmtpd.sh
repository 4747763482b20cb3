#!/usr/bin/env bash
# Makes sure a Python venv with aiosmtpd 1.4.6 (the SMTP server the email
# tests deliver to, see alerting/tests/smtp_maildir.py) exists under
# ${XDG_CACHE_HOME:-$HOME/.cache}/sightline/aiosmtpd, and prints its python.
# Installs Debian's python3-venv when venv is missing. Idempotent and safe to
# run concurrently; everything but the path goes to stderr.
set -euo pipefail

version=1.4.6
venv="${XDG_CACHE_HOME:-$HOME/.cache}/sightline/aiosmtpd"
python="$venv/bin/python"

ready() {
  [ -x "$python" ] && "$python" - "$version" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import aiosmtpd.handlers, aiosmtpd.smtp
sys.exit(version("aiosmtpd") != sys.argv[1])
PY
}

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if ! ready; then
  echo "aiosmtpd: installing aiosmtpd==$version into $venv" >&2
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "aiosmtpd: installing Debian's python3-venv" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
  fi
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$python" -m pip install --quiet --disable-pip-version-check --no-input "aiosmtpd==$version" >&2
  if ! ready; then
    echo "aiosmtpd: $venv has no working aiosmtpd $version after installing it" >&2
    exit 1
  fi
fi
echo "$python"
