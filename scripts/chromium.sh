#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser end-to-end tests
# (never a browser download of a test tool's own).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "chromium: installing Debian's chromium"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
