#!/usr/bin/env bash
# Runs every test: unit tests, the end-to-end tests against the real binary on 127.0.0.1,
# and the demo page in Debian's chromium.
# Needs cmake (bundled libopus), chromium, node and npm; on Debian:
#   apt-get install -y cmake chromium nodejs npm
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for tool in cmake chromium node npm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: missing ${missing[*]}; on Debian: apt-get install -y cmake chromium nodejs npm" >&2
  exit 1
fi
# The browser driver (playwright-core, pinned by tests/browser/package-lock.json).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# The vendored, patched dimpl (str0m's DTLS; vendor/dimpl/PATCHED.md): its own unit tests.
cargo test --locked -p dimpl --lib
exec cargo test --locked "$@"
