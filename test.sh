#!/usr/bin/env bash
# Runs every test: unit tests, the end-to-end tests against the real binary on 127.0.0.1,
# the demo page in Debian's chromium, and GStreamer's webrtcbin as a WHIP publisher in a
# network namespace of the test's own (tests/e2e/gstreamer.rs; it says SKIPPED where namespaces
# are not allowed).
# What the tests need beyond Rust (cmake, chromium, node, npm, iproute2, and GStreamer's
# webrtcbin, pyOpenSSL and aiortc for /usr/bin/python3) is installed by scripts/deps.sh when
# this runs as root on Debian; otherwise it names the one apt-get command to run, and stops.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh test
# The browser driver (playwright-core, pinned by tests/browser/package-lock.json).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# The vendored, patched dimpl (str0m's DTLS; vendor/dimpl/PATCHED.md): its own unit tests.
cargo test --locked -p dimpl --lib
exec cargo test --locked "$@"
