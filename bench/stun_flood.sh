#!/usr/bin/env bash
# Issue 13's benchmark: what a STUN flood costs the daemon and its callers. Starts the release
# daemon on 127.0.0.1 and runs N connected callers (tapedeck-load) for S seconds twice against
# it: once alone, once with a flood of PPS STUN Binding requests a second for F seconds from
# the steady middle of the calls (made-up USERNAMEs, 1 in 100 a real session's ufrag with a
# wrong password). Prints one line: pacing p99 of both runs, the daemon's CPU per
# caller-second over the flood's window in both runs, and what /metrics counted as dropped.
#
#   bench/stun_flood.sh                    # N=200 S=20 PPS=20000 F=10
#   N=100 PPS=50000 bench/stun_flood.sh
#   BIN=../old/target/release bench/stun_flood.sh   # another build's daemon, this load generator
#   PIN=1 bench/stun_flood.sh              # daemon on core 0, load generator and flood on core 1
#
# Everything runs on 127.0.0.1; the load generator (and the flood's thread) share the cores
# with the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}; S=${S:-20}; PPS=${PPS:-20000}; F=${F:-10}; RAMP=${RAMP:-50}
cargo build --release --locked -q --bins
daemon=${BIN:-target/release}/tapedeck
load=target/release/tapedeck-load
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
daemon_cpu=(); load_cpu=()
if [ "${PIN:-0}" = 1 ]; then daemon_cpu=(taskset -c 0); load_cpu=(taskset -c 1); fi
"${daemon_cpu[@]}" "$daemon" --http-addr 127.0.0.1:0 --udp-addr 127.0.0.1:0 --log-level warn --max-sessions 2000 \
  --recordings "$dir/rec" --logs "$dir/logs" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$dir/out")
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
dropped() { curl -s "$url/metrics" | grep '^tapedeck_datagrams_dropped_total' || true; }

# The flood starts once everyone has connected (ramp + 1 s after the first answer); the CPU
# window is its middle, the same stretch of the calls in both runs.
ramp_s=$(python3 -c "print($N / $RAMP)")
flood_after=$(python3 -c "print($ramp_s + 1)")
window=$(python3 -c "print(max(2, $F - 2))")

# run NAME [flood flags...]: one load run; prints the daemon CPU ms over the window.
run() {
  local name=$1; shift
  "${load_cpu[@]}" "$load" --url "$url" --callers "$N" --seconds "$S" --ramp "$RAMP" --check-recordings "$dir/rec" "$@" \
    >"$dir/$name.load" 2>&1 &
  local lpid=$!
  sleep "$(python3 -c "print($flood_after + 1)")"
  local c0 t0 c1 t1
  c0=$(cpu); t0=$(date +%s.%N)
  sleep "$window"
  c1=$(cpu); t1=$(date +%s.%N)
  wait $lpid || true
  python3 -c "print(($c1 - $c0) * 1000 / $ticks, $t1 - $t0)" >"$dir/$name.cpu"
}

run quiet
sleep 2
dropped >"$dir/dropped.before"
run flood --stun-flood "$PPS" --flood-after "$flood_after" --flood-seconds "$F"
sleep 1
dropped >"$dir/dropped.after"

python3 - "$dir" "$N" "$PPS" <<'PY'
import json, sys
d, n, pps = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def report(name):
    lines = open(f"{d}/{name}.load").read().strip().splitlines()
    return json.loads(lines[-1])
def cpu(name):
    ms, secs = map(float, open(f"{d}/{name}.cpu").read().split())
    return ms / (secs * n)
def counters(name):
    out = {}
    for line in open(f"{d}/dropped.{name}"):
        key, _, value = line.rpartition(" ")
        reason = key.split('reason="')[1].rstrip('"}') if 'reason="' in key else "all"
        out[reason] = float(value)
    return out
q, f = report("quiet"), report("flood")
before, after = counters("before"), counters("after")
drops = ", ".join(f"{r} {after[r] - before.get(r, 0):.0f}" for r in sorted(after)) or "none counted"
fmt = lambda v: "-" if v is None else f"{v:.2f}"
print(f"stun flood, {n} callers: pacing p99 {fmt(q['pacing_p99_ms'])} ms alone, {fmt(f['pacing_p99_ms'])} ms flooded; "
      f"daemon CPU {cpu('quiet'):.2f} / {cpu('flood'):.2f} ms per caller-second; "
      f"flood {f['flood_sent']} sent at {pps}/s ({f['flood_sent_known_ufrag']} with a real ufrag); dropped: {drops}; "
      f"connected {q['connected']}/{f['connected']}, recordings complete {q['recordings_complete']}/{f['recordings_complete']} of {n}")
PY
