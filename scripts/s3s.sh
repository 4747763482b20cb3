#!/usr/bin/env bash
# The S3-compatible server the object-store tests start: s3s-fs (a real,
# SigV4-checking S3 server over a folder), built once into target/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x target/tools/bin/s3s-fs ]; then
  cargo install --locked --quiet s3s-fs --version 0.14.1 --features binary --root target/tools
fi
echo target/tools/bin/s3s-fs
