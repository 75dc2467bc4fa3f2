#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) on stable Rust, without a sanitizer
# (AddressSanitizer: SANITIZER=address, which needs RUSTC_BOOTSTRAP=1 on stable).
# New inputs go to a scratch corpus; the committed seeds in fuzz/corpus/<target> are read only.
# Prints, per target, executions and coverage; exits non-zero if a target crashed (the input
# is saved under fuzz/artifacts/<target>/: turn it into a named regression test).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
sanitizer=${SANITIZER:-none}
targets=(${TARGETS:-signalling engine_datagrams recording_ops capture})
if [ "$sanitizer" != none ]; then export RUSTC_BOOTSTRAP=1; fi
cargo fuzz build --sanitizer "$sanitizer"
status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  log=$(mktemp)
  echo "== $t for ${secs}s"
  if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    status=1
    echo "!! $t crashed; see fuzz/artifacts/$t/"
    tail -40 "$log"
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|^#[0-9]+ +DONE" "$log" || true
  grep -E "cov: [0-9]+" "$log" | tail -1 || true
  rm -rf "$scratch" "$log"
done
exit $status
