#!/usr/bin/env bash
# JetStream's own ceiling (issue 15): what a small libnats client gets from
# nats-server on this machine, the figures the JetStream backend's
# PutRecords (>= 0.8x the async publish rate, same size and replicas) and
# fan-out (send -> receipt p50 <= 2x publish -> receive p50) are held to.
#
# For each replica count in REPLICAS (default "1 3": R1 on one standalone
# nats-server, R3 on a 3-node cluster, both from tests/lib/nats-cluster.sh on
# loopback) and each size in SIZES (default "100 1024"), RUNS (3) rounds of
# sluice-bench-jetstream (jetstream-ceiling.c), each on a fresh stream:
#   publish   COUNT (100000) async publishes, at most WINDOW (4096) unacked
#   latency   RATE (1000) msgs/s for LAT_DURATION (5) s, ordered push
#             consumer, --send-asap (each publish written at once)
#   buffered  the same with libnats' default write buffering (its flusher
#             waits up to 1 ms for more), for comparison
# and prints the medians over the runs (OUT/jetstream-ceiling.txt; one JSON
# line per replicas x size with the per-run figures in
# OUT/jetstream-ceiling.json; each run's output in
# OUT/logs/jetstream-ceiling/).
#
#   bash loadtest/jetstream-ceiling.sh [build-dir]     RUNS=3 SIZES="100 1024"
#
# Needs nats-server, curl, python3 and sluice-bench-jetstream (built when
# libnats-dev is installed). Binds 127.0.0.1 only; every bench run is capped
# (--duration, TIMEOUT); the servers are stopped by PID on exit.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
BUILD=${BUILD:-${1:-$root/build}}
RUNS=${RUNS:-3} SIZES=${SIZES:-100 1024} REPLICAS=${REPLICAS:-1 3}
COUNT=${COUNT:-100000} WINDOW=${WINDOW:-4096} RATE=${RATE:-1000} LAT_DURATION=${LAT_DURATION:-5}
TIMEOUT=${TIMEOUT:-120} OUT=${OUT:-$here/out}
bench=$BUILD/loadtest/sluice-bench-jetstream
cluster=$root/tests/lib/nats-cluster.sh

die() { echo "jetstream-ceiling: $*" >&2; exit 1; }
[ -x "$bench" ] || die "no $bench (install libnats-dev, configure with -DSLUICE_BENCH=ON, build sluice-bench-jetstream)"
for t in nats-server curl python3 timeout; do command -v "$t" >/dev/null || die "needs $t"; done

mkdir -p "$OUT/logs/jetstream-ceiling"
# one scenario at a time per OUT (as lib.sh): they would share the CPUs
exec 9>"$OUT/.lock"
flock -w 900 9 || die "$OUT stayed locked for 15 minutes"
tmp=$(mktemp -d /tmp/sluice-js-ceiling.XXXXXX)
cleanup() {
  if [ -s "$tmp/nats/ports" ]; then bash "$cluster" stop --dir "$tmp/nats" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -f "$OUT/jetstream-ceiling.json" "$OUT/jetstream-ceiling.txt" "$OUT/logs/jetstream-ceiling"/*.log

# run NAME RUN ARGS...: one bench run; its JSON line is appended to $tmp/NAME.
run() {
  local name=$1 log
  log="$OUT/logs/jetstream-ceiling/$name-$2.log"
  shift 2
  if ! timeout "$TIMEOUT" "$bench" --url "$NATS_URL" "$@" >"$log" 2>&1; then
    tail -5 "$log" >&2
    die "sluice-bench-jetstream $* failed (log: $log)"
  fi
  grep '^{' "$log" >>"$tmp/$name"
}

for r in $REPLICAS; do
  nodes=1
  [ "$r" -gt 1 ] && nodes=$((r < 3 ? 3 : r))
  info=$(bash "$cluster" up --nodes "$nodes" --dir "$tmp/nats") || die "the cluster did not start"
  NATS_URL=$(sed -n 's/^NATS_URL=//p' <<<"$info")
  echo "R$r on $nodes nats-server(s): $NATS_URL" >&2
  for size in $SIZES; do
    for i in $(seq "$RUNS"); do
      run "r$r-s$size-publish" "$i" --replicas "$r" --size "$size" --mode publish --count "$COUNT" \
        --window "$WINDOW" --duration 60 --label "publish R$r ${size}B"
      run "r$r-s$size-latency" "$i" --replicas "$r" --size "$size" --mode latency --rate "$RATE" \
        --duration "$LAT_DURATION" --send-asap --label "latency R$r ${size}B"
      run "r$r-s$size-buffered" "$i" --replicas "$r" --size "$size" --mode latency --rate "$RATE" \
        --duration "$LAT_DURATION" --label "latency buffered R$r ${size}B"
      echo "  R$r ${size}B run $i done" >&2
    done
  done
  bash "$cluster" stop --dir "$tmp/nats"
  rm -rf "$tmp/nats"
done

# Medians per figure over the runs; one JSON line per (replicas, size).
python3 - "$tmp" "$REPLICAS" "$SIZES" "$OUT" "$RUNS" "$RATE" "$WINDOW" <<'EOF' | tee "$OUT/jetstream-ceiling.txt"
import json, statistics, sys
tmp, replicas, sizes, out, runs, rate, window = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), *sys.argv[4:8]
def load(name):
    with open(f"{tmp}/{name}") as f:
        return [json.loads(l) for l in f]
med = lambda xs: round(statistics.median(xs), 1)
rows = []
for r in replicas:
    for s in sizes:
        pub = [j["publish"] for j in load(f"r{r}-s{s}-publish")]
        lat = [j["latency"] for j in load(f"r{r}-s{s}-latency")]
        buf = [j["latency"] for j in load(f"r{r}-s{s}-buffered")]
        rows.append({
            "replicas": int(r), "size": int(s), "runs": len(pub),
            "msgs_per_s": med([p["msgs_per_s"] for p in pub]),
            "runs_msgs_per_s": [p["msgs_per_s"] for p in pub],
            "runs_recv_p50_us": [l["recv_p50_us"] for l in lat],
            "mib_per_s": med([p["mib_per_s"] for p in pub]),
            "recv_p50_us": med([l["recv_p50_us"] for l in lat]),
            "recv_p99_us": med([l["recv_p99_us"] for l in lat]),
            "recv_max_us": med([l["recv_max_us"] for l in lat]),
            "ack_p50_us": med([l["ack_p50_us"] for l in lat]),
            "buffered_recv_p50_us": med([l["recv_p50_us"] for l in buf]),
        })
with open(f"{out}/jetstream-ceiling.json", "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
print(f"JetStream ceiling, medians of {runs} runs (publish: async, window {window}; latency: "
      f"{rate} msgs/s, ordered push consumer, send asap)")
print(f"{'R':>2} {'size':>6} {'msgs/s':>9} {'(runs min-max)':>16} {'MiB/s':>7} {'recv p50':>9} "
      f"{'p99':>8} {'max':>8} {'ack p50':>8} {'buffered p50':>13}   (latencies in us)")
for w in rows:
    spread = f"{min(w['runs_msgs_per_s']):.0f}-{max(w['runs_msgs_per_s']):.0f}"
    print(f"{w['replicas']:>2} {w['size']:>6} {w['msgs_per_s']:>9.0f} {spread:>16} "
          f"{w['mib_per_s']:>7.1f} {w['recv_p50_us']:>9.0f} {w['recv_p99_us']:>8.0f} "
          f"{w['recv_max_us']:>8.0f} {w['ack_p50_us']:>8.0f} {w['buffered_recv_p50_us']:>13.0f}")
EOF
