#!/usr/bin/env bash
# Builds and runs the daemon on its embedded defaults; arguments go to tapedeck
# (`./run.sh --help`). On a machine with only Rust it first installs what the build needs
# (cmake) when run as root, or names the one command to run.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh run
exec cargo run --release --locked -- "$@"
