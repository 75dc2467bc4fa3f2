#!/usr/bin/env bash
# A/B cost probe: the daemon from BINDIR (e.g. an older tree's target/release) under this tree's
# tapedeck-load, N callers for SECS seconds; prints the daemon's CPU per caller-second and RSS per
# caller as bench/quick.sh does. Alternate two BINDIRs to compare builds in the same hour.
# Usage: bench/ab.sh BINDIR N SECS
set -euo pipefail
bin=$1; n=$2; secs=$3
load=$(cd "$(dirname "$0")/.." && pwd)/target/release/tapedeck-load
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
$bin/tapedeck --http-addr 127.0.0.1:0 --udp-addr 127.0.0.1:0 --log-level warn --recordings "$dir/rec" --logs "$dir/logs" >"$dir/out" &
pid=$!
for _ in $(seq 50); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$dir/out")
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
idle=$(rss)
"$load" --url "$url" --callers "$n" --seconds "$secs" --ramp 50 >"$dir/load" &
lpid=$!
sleep $(( 2 + n / 50 + 1 ))
c0=$(cpu); t0=$(date +%s.%N); peak=0
while kill -0 $lpid 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
  sleep 1
  now=$(date +%s.%N); if (( $(echo "$now - $t0 > $secs - 6" | bc) )); then break; fi
done
c1=$(cpu); t1=$(date +%s.%N)
wait $lpid || true
w=$(echo "$t1 - $t0" | bc)
printf '%s %.3f ms/caller-s, RSS %.0f KiB/caller\n' "$bin" "$(echo "($c1 - $c0) * 1000 / $ticks / ($w * $n)" | bc -l)" "$(echo "($peak - $idle) / $n" | bc -l)"
