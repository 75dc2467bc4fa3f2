#!/usr/bin/env bash
# Quick cost probe: starts the release daemon on 127.0.0.1, runs N callers for S seconds with
# tapedeck-load, and prints the daemon's CPU time (all threads, from /proc) and RSS.
# Usage: bench/quick.sh N SECONDS [extra daemon flags...]
# A/B: BIN=../old/target/release bench/quick.sh N SECONDS runs another build's daemon under
# this tree's load generator; alternate it with a plain run to compare builds in one hour.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1}; secs=${2:-20}; shift 2 || true
cargo build --release --locked -q --bins
daemon=${BIN:-target/release}/tapedeck
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$daemon" --http-addr 127.0.0.1:0 --udp-addr 127.0.0.1:0 --log-level warn \
  --recordings "$dir/rec" --logs "$dir/logs" "$@" >"$dir/out" &
pid=$!
for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$dir/out")
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
idle_rss=$(rss)
target/release/tapedeck-load --url "$url" --callers "$n" --seconds "$secs" --ramp 20 >"$dir/load" &
lpid=$!
sleep $(( 1 + n / 20 + 1 ))   # let everyone connect
c0=$(cpu); t0=$(date +%s.%N); r_peak=0
while kill -0 $lpid 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$r_peak" ] && r_peak=$r
  sleep 1
  # stop measuring when the first callers start hanging up
  now=$(date +%s.%N); if (( $(echo "$now - $t0 > $secs - 3" | bc) )); then break; fi
done
c1=$(cpu); t1=$(date +%s.%N)
wait $lpid || true
window=$(echo "$t1 - $t0" | bc)
cpu_ms=$(echo "($c1 - $c0) * 1000 / $ticks" | bc -l)
printf 'callers %d: window %.1f s, daemon CPU %.0f ms = %.2f ms per caller-second (%.1f %% of a core); RSS idle %d KiB, peak %d KiB (%.0f KiB per caller)\n' \
  "$n" "$window" "$cpu_ms" "$(echo "$cpu_ms / ($window * $n)" | bc -l)" "$(echo "$cpu_ms / ($window * 10)" | bc -l)" \
  "$idle_rss" "$r_peak" "$(echo "($r_peak - $idle_rss) / $n" | bc -l)"
tail -1 "$dir/load"
