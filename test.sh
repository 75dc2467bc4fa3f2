#!/usr/bin/env bash
# Runs every test: unit tests and the end-to-end tests against the real binary on 127.0.0.1.
# Needs cmake (for the bundled libopus): `apt-get install -y cmake` on Debian.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v cmake >/dev/null 2>&1; then
  echo "test.sh: cmake is missing; install it first (Debian: apt-get install -y cmake)" >&2
  exit 1
fi
exec cargo test --locked "$@"
