#!/usr/bin/env bash
# Quick cost probe: starts the release daemon on 127.0.0.1, runs N callers for S seconds with
# tapedeck-load, and prints the daemon's CPU time (all threads, from /proc; and per thread
# group: the event loop, the recorders, the sample encoder), its context switches and RSS.
# Usage: bench/quick.sh N SECONDS [extra daemon flags...]
# LOOPS=K runs the daemon with K event loops (default 1; LOOPS= passes no --loops, for builds
# from before the flag).
# A/B: BIN=../old/target/release bench/quick.sh N SECONDS runs another build's daemon under
# this tree's load generator; alternate it with a plain run to compare builds in one hour.
# On two or more cores the daemon runs on core 0 and the load generator on core 1 (PIN=0:
# both anywhere), so the daemon's figures are one core's work, not the scheduler's mix.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/threads.sh
n=${1:-1}; secs=${2:-20}; shift 2 || true
cargo build --release --locked -q --bins
daemon=${BIN:-target/release}/tapedeck
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
daemon_cpu=(); load_cpu=()
LOOPS=${LOOPS-1}; loops_flag=(); [ -n "$LOOPS" ] && loops_flag=(--loops "$LOOPS")
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then daemon_cpu=(taskset -c 0); load_cpu=(taskset -c 1); fi
"${daemon_cpu[@]}" "$daemon" --http-addr 127.0.0.1:0 --udp-addr 127.0.0.1:0 --log-level warn \
  --max-sessions 2000 ${loops_flag[@]+"${loops_flag[@]}"} --recordings "$dir/rec" --logs "$dir/logs" "$@" >"$dir/out" &
pid=$!
for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$dir/out")
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
sleep 1
idle_rss=$(rss)
"${load_cpu[@]}" target/release/tapedeck-load --url "$url" --callers "$n" --seconds "$secs" --ramp 50 >"$dir/load" &
lpid=$!
sleep $(( 2 + n / 50 + 1 ))   # let everyone connect
s0=$(thread_snap $pid); t0=$(date +%s.%N); r_peak=0
while kill -0 $lpid 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$r_peak" ] && r_peak=$r
  sleep 1
  # stop measuring when the first callers start hanging up
  now=$(date +%s.%N); if (( $(echo "$now - $t0 > $secs - 4 - $n / 50" | bc) )); then break; fi
done
s1=$(thread_snap $pid); t1=$(date +%s.%N)
wait $lpid || true
window=$(echo "$t1 - $t0" | bc)
python3 - "$n" "$window" "$(thread_report "$n" "$window" "$s0" "$s1")" "$idle_rss" "$r_peak" <<'PY'
import json, sys
n, window, r, idle, peak = int(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"callers {n}: window {window:.1f} s, daemon CPU {r['total_ms']:.2f} ms per caller-second "
      f"({r['total_ms'] * n / 10:.1f} % of a core): loop {r['loop_ms']:.2f}, recorders {r['recorders_ms']:.2f}, "
      f"encoder {r['encoder_ms']:.2f}, other {r['other_ms']:.2f}; context switches {r['switches']:.2f} per caller-second "
      f"(loop {r['loop_switches']:.2f}); RSS idle {idle} KiB, peak {peak} KiB ({(peak - idle) / n:.0f} KiB per caller)")
PY
tail -1 "$dir/load"
