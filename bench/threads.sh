# Per-thread CPU and context switches of a running daemon, from /proc. Sourced by the
# benchmarks:
#   s0=$(thread_snap $pid); sleep 10; s1=$(thread_snap $pid)
#   thread_report CALLERS SECONDS "$s0" "$s1"   # one JSON object, ms and switches per caller-second
# Threads are grouped by name: loop-N are the event loops, recorder-N the recorders,
# sample-encoder the sample's encoder, everything else (HTTP, janitor, signals) "other".

thread_snap() {
  local t
  printf '__total__ %s 0\n' "$(awk '{print $14+$15}' /proc/"$1"/stat)"
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ <"$t/comm")" "$(awk '{print $14+$15}' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{n=$2} END{print v+n}' "$t/status")"
  done 2>/dev/null
}

thread_report() {
  python3 - "$1" "$2" "$3" "$4" "$(getconf CLK_TCK)" <<'PY'
import json, sys
n, secs, s0, s1, tck = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
def parse(text):
    out = {}
    for line in text.splitlines():
        parts = line.rsplit(" ", 2)
        # A thread that ended while it was being read leaves a field empty: skip it.
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        comm, ticks, switches = parts
        group = "total" if comm == "__total__" else "loop" if comm.startswith("loop-") else "recorders" if comm.startswith("recorder-") else "encoder" if comm == "sample-encoder" else "other"
        t, s = out.get(group, (0, 0))
        out[group] = (t + int(ticks), s + int(switches))
    return out
a, b = parse(s0), parse(s1)
per = n * secs
report = {}
for g in ("total", "loop", "recorders", "encoder", "other"):
    t0, w0 = a.get(g, (0, 0))
    t1, w1 = b.get(g, (0, 0))
    report[g + "_ms"] = max(0, t1 - t0) * 1000 / tck / per
    report[g + "_switches"] = max(0, w1 - w0) / per
# A thread that ended in between (the encoder, once the sample's frames repeat) is gone from
# the second snapshot; the process total still has its time: the rest is the encoder's.
if "encoder" not in b:
    report["encoder_ms"] = max(0.0, report["total_ms"] - report["loop_ms"] - report["recorders_ms"] - report["other_ms"])
del report["total_switches"]
report["switches"] = sum(report[g + "_switches"] for g in ("loop", "recorders", "encoder", "other"))
report = {k: round(v, 4) for k, v in report.items()}
print(json.dumps(report))
PY
}
