#!/usr/bin/env bash
# Runs every test: unit tests, the end-to-end tests against the real binary on 127.0.0.1,
# the demo page in Debian's chromium, and GStreamer's webrtcbin as a WHIP publisher in a
# network namespace of the test's own (tests/gstreamer.rs; it says SKIPPED where namespaces
# are not allowed).
# Needs cmake (bundled libopus), chromium, node, npm, ip (iproute2), and for /usr/bin/python3:
# GStreamer with webrtcbin and libnice, pyOpenSSL and aiortc. On Debian (.ci/run installs them):
#   apt-get install -y cmake chromium nodejs npm iproute2 python3-gst-1.0 \
#     gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice gstreamer1.0-plugins-base \
#     gstreamer1.0-plugins-good gstreamer1.0-plugins-bad python3-openssl python3-aiortc
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for tool in cmake chromium node npm ip; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
for module in gi OpenSSL aiortc; do
  /usr/bin/python3 -c "import $module" >/dev/null 2>&1 || missing+=("python3 module $module")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: missing ${missing[*]}; see the packages at the top of test.sh (.ci/run installs them)" >&2
  exit 1
fi
# The browser driver (playwright-core, pinned by tests/browser/package-lock.json).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# The vendored, patched dimpl (str0m's DTLS; vendor/dimpl/PATCHED.md): its own unit tests.
cargo test --locked -p dimpl --lib
exec cargo test --locked "$@"
