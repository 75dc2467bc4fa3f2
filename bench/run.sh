#!/usr/bin/env bash
# The benchmark: tapedeck (release) under tapedeck-load at several caller counts and both
# packet times, CPU and memory from /proc, every recording checked, compared with the floor
# measured on this machine. Writes BENCHMARKS.md (or $OUT).
#
#   bench/run.sh                      # N = 50 100 200 500, 30 s calls, ptime 10 and 20
#   COUNTS="50 500" SECONDS_PER_CALL=60 PTIMES=10 bench/run.sh
#   LOOPS="1 2" COUNTS="100 160" PTIMES=10 PIN=0 bench/run.sh   # rows for 1 and 2 event loops
#   FORMATS="wav ogg both" COUNTS=100 PTIMES=20 bench/run.sh      # rows per --format
#
# Everything runs on 127.0.0.1. On two or more cores the daemon runs on core 0 and the load
# generator on core 1 (PIN=0: both anywhere), so the daemon's figures are one core's work.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/threads.sh
daemon_cpu=(); load_cpu=()
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then daemon_cpu=(taskset -c 0); load_cpu=(taskset -c 1); fi
COUNTS=${COUNTS:-"50 100 200 500"}
SECS=${SECONDS_PER_CALL:-30}
PTIMES=${PTIMES:-"10 20"}
RAMP=${RAMP:-50}
LOOPS=${LOOPS:-1}
FORMATS=${FORMATS:-wav}
OUT=${OUT:-BENCHMARKS.md}
cargo build --release --locked -q --bins
bin=target/release
work=$(mktemp -d)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)
rows=()
floors=()

rcvbuf_errors() { awk '/^Udp:/ { if (!h) { for (i=1;i<=NF;i++) if ($i=="RcvbufErrors") c=i; h=1 } else print $c }' /proc/net/snmp; }

for ptime in $PTIMES; do
  floor_json=$("${daemon_cpu[@]}" $bin/tapedeck-floor --ptime "$ptime")
  floors+=("$floor_json")
  floor=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["floor_ms_per_caller_second"])' "$floor_json")
  for n in $COUNTS; do
  for loops in $LOOPS; do
  for format in $FORMATS; do
    dir="$work/run-$ptime-$n-$loops-$format"
    mkdir -p "$dir"
    "${daemon_cpu[@]}" $bin/tapedeck --http-addr 127.0.0.1:0 --udp-addr 127.0.0.1:0 --log-level warn --ptime "$ptime" --loops "$loops" --format "$format" \
      --max-sessions 2000 --recordings "$dir/rec" --logs "$dir/logs" >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/.*http \(http:[^ ]*\).*/\1/p' "$dir/out")
    sleep 1
    idle_rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
    errs0=$(rcvbuf_errors)
    "${load_cpu[@]}" $bin/tapedeck-load --url "$url" --callers "$n" --seconds "$SECS" --ramp "$RAMP" --server-ptime "$ptime" \
      --check-recordings "$dir/rec" >"$dir/load" 2>&1 &
    lpid=$!
    # Measure the steady middle: from everyone connected (ramp + 2 s) to 2 s before the first hang-up.
    ramp_s=$(python3 -c "print($n / $RAMP + 2)")
    sleep "$ramp_s"
    window=$(python3 -c "print(max(5, $SECS - ($n / $RAMP) - 4))")
    c0=$(awk '{print $14+$15}' /proc/$pid/stat); l0=$(awk '{print $14+$15}' /proc/$lpid/stat); t0=$(date +%s.%N)
    s0=$(thread_snap $pid)
    peak=0
    end=$(python3 -c "import time; print(time.time() + $window)")
    while python3 -c "import time,sys; sys.exit(0 if time.time() < $end else 1)"; do
      r=$(awk '/VmRSS/{print $2}' /proc/$pid/status); [ "$r" -gt "$peak" ] && peak=$r
      sleep 1
    done
    c1=$(awk '{print $14+$15}' /proc/$pid/stat); l1=$(awk '{print $14+$15}' /proc/$lpid/stat); t1=$(date +%s.%N)
    s1=$(thread_snap $pid)
    threads=$(thread_report "$n" "$(python3 -c "print($t1 - $t0)")" "$s0" "$s1")
    wait $lpid || true
    errs1=$(rcvbuf_errors)
    kill -TERM $pid; wait $pid || true
    rows+=("$(python3 - "$dir/load" "$n" "$ptime" "$c0" "$c1" "$t0" "$t1" "$ticks" "$idle_rss" "$peak" "$floor" "$errs0" "$errs1" "$l0" "$l1" "$threads" "$floor_json" "$loops" "$format" <<'PY'
import json, sys
load, n, ptime, c0, c1, t0, t1, ticks, idle, peak, floor, e0, e1, l0, l1, threads, fj, loops, fmt = sys.argv[1:]
th, fj = json.loads(threads), json.loads(fj)
# The loop's own floor share: str0m and the engine (one session alone; and with as many as a
# daemon holds taking turns), plus its syscalls (a send per outgoing, a receive per incoming packet).
syscalls = (1000 / fj["ptime_ms"] * fj["udp_send_us"] + 1000 / fj["caller_ptime_ms"] * fj["udp_recv_us"]) / 1000
loop_floor = fj["str0m_ms_per_session_second"] + syscalls
loop_floor_cold = fj["str0m_ms_per_session_second_interleaved"] + syscalls
floor_cold = float(floor) - fj["str0m_ms_per_session_second"] + fj["str0m_ms_per_session_second_interleaved"]
lines = open(load).read().strip().splitlines()
j = json.loads(lines[-1])
n = int(n); window = float(t1) - float(t0)
cpu_ms = (float(c1) - float(c0)) * 1000 / int(ticks)
per = cpu_ms / (window * n)
load_per = (float(l1) - float(l0)) * 1000 / int(ticks) / (window * n)
rss_per = (int(peak) - int(idle)) / n
f = lambda v: "-" if v is None else f"{v:.1f}"
print(f"| {ptime} | {n} | {loops} | {fmt} | {j['connected']}/{n} | {per:.2f} | {per/float(floor):.2f}x / {per/floor_cold:.2f}x | "
      f"{th['loop_ms']:.2f} | {th['loop_ms']/loop_floor:.2f}x / {th['loop_ms']/loop_floor_cold:.2f}x | "
      f"{th['recorders_ms']:.2f} / {th['encoder_ms']:.2f} | {th['switches']:.1f} | {rss_per:.0f} | "
      f"{f(j['answer_ms']['p50'])} / {f(j['answer_ms']['p99'])} | {f(j['connect_ms']['p50'])} / {f(j['connect_ms']['p99'])} | "
      f"{100*j['packets_received']/max(1,j['packets_expected']):.1f} % | {f(j['pacing_p99_ms'])} / {f(j['pacing_seen_p99_ms'])} | "
      f"{j['max_gap_ms']:.1f} | {j['recordings_complete']}/{n} | {int(e1)-int(e0)} | {load_per:.2f} |")
PY
)")
    echo "${rows[-1]}"
  done
  done
  done
done

{
  echo "# tapedeck benchmarks"
  echo
  echo "Made by \`bench/run.sh\` on $(date -u +%Y-%m-%d) on this machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')."
  echo "Reproduce with \`COUNTS=\"$COUNTS\" SECONDS_PER_CALL=$SECS PTIMES=\"$PTIMES\" RAMP=$RAMP LOOPS=\"$LOOPS\" FORMATS=\"$FORMATS\" PIN=${PIN:-1} bench/run.sh\`."
  echo "The load generator (\`tapedeck-load\`, one media thread) runs on the same machine: on two or"
  echo "more cores the daemon is pinned to core 0 and the load generator to core 1 (PIN=0: anywhere)."
  echo
  echo "Callers send 20 ms Opus packets of their own tone; the daemon sends the sample at its"
  echo "packet time (ptime). CPU is the daemon's, all threads, from /proc over the steady middle"
  echo "of the calls; RSS per caller is the peak above the idle daemon. The floor is measured in"
  echo "the same run by \`tapedeck-floor\` (see below); the ratio is CPU / floor, against the floor"
  echo "with str0m's share measured on one session alone (everything in the CPU's caches) and with"
  echo "100 sessions taking turns (each turn finds its session's state out of the caches, as a"
  echo "daemon's sessions do). The loop thread's own column is its CPU (from /proc/PID/task) against"
  echo "its share of the floor: str0m plus one send per outgoing and one receive per incoming packet. Pacing is the"
  echo "p99 distance of each packet's arrival from its ideal time (after the median offset):"
  echo "\"sent\" by the kernel's arrival stamp (SO_TIMESTAMPNS; on loopback, the moment the daemon"
  echo "sent it), \"read\" by when the load generator got to read it (its own delays included)."
  echo
  echo "| ptime ms | callers | event loops | format | connected | CPU ms per caller-s | vs floor: one session / sessions taking turns | loop thread ms per caller-s | loop vs its floor share: one / taking turns | recorders / encoder ms per caller-s | context switches per caller-s | RSS KiB per caller | answer ms p50 / p99 | connect ms p50 / p99 | packets received | pacing p99 ms: sent / read | largest gap ms | recordings complete | UDP rcvbuf errors | load generator CPU ms per caller-s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "## The floor (per caller-second, measured by tapedeck-floor, medians of batches)"
  echo
  for f in "${floors[@]}"; do
    python3 -c '
import json,sys
j = json.loads(sys.argv[1])
print("- ptime %d ms: Opus decode %.1f us per 20 ms frame (%.1f with %d decoders taking turns; the lower counts); UDP send %.2f us (sendto %.2f, sendmmsg %.2f; the lower counts), recv %.2f us; WAV write %.2f us per frame; str0m + engine %.3f ms per session-second alone, %.3f with %d sessions taking turns; floor %.2f ms per caller-second (%.2f with sessions taking turns)" % (
    j["ptime_ms"], j["opus_decode_us_per_frame"], j["opus_decode_us_per_frame_interleaved"], j["decoders"], j["udp_send_us"], j["udp_sendto_us"], j["udp_sendmmsg_us"], j["udp_recv_us"], j["wav_write_us_per_frame"],
    j["str0m_ms_per_session_second"], j["str0m_ms_per_session_second_interleaved"], j["sessions"], j["floor_ms_per_caller_second"],
    j["floor_ms_per_caller_second"] - j["str0m_ms_per_session_second"] + j["str0m_ms_per_session_second_interleaved"]))' "$f"
  done
} >"$OUT"
echo "wrote $OUT"
