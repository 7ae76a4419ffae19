#!/usr/bin/env bash
# Every scenario with small defaults (the whole run takes about 5 minutes on
# 2 cores, plus 3 x ~15 s of fan-out), results and plots in OUT (default loadtest/out/):
#   OUT/<scenario>.json  one JSON line per figure    OUT/results.json  all of them
#   OUT/<scenario>.txt   the human table             OUT/summary.txt   all of them
#   OUT/<scenario>-latency-cdf.png, OUT/<scenario>-throughput.png
#
#   bash loadtest/run-all.sh [build-dir]
#   RUNS=3 C=10 M=10 PERF=1 BUILD=/tmp/rel bash loadtest/run-all.sh
#
# Every setting of lib.sh applies (RUNS, C, M, PROTOS, BASELINE, TIMEOUT,
# PERF, ENDPOINT); per-scenario request counts: N_HEALTHZ, N_PUT1, N_PUT500,
# N_PUTLARGE, N_GET, N_DURABILITY. Each scenario is stopped after
# SCENARIO_TIMEOUT seconds (default 300) and the run goes on with the next.
set -uo pipefail
d=$(cd "$(dirname "$0")" && pwd)
export BUILD=${BUILD:-${1:-$(dirname "$d")/build}} OUT=${OUT:-$d/out} RUNS=${RUNS:-3} TIMEOUT=${TIMEOUT:-60}
[ -x "$BUILD/gateway/sluice" ] || { echo "build first: $BUILD/gateway/sluice not found (set BUILD)" >&2; exit 1; }
mkdir -p "$OUT"
t0=$(date +%s) failed=()
scenario() { # name N
  echo "=== $1 (N=$2) $(date -u +%T)" >&2
  N=$2 timeout "${SCENARIO_TIMEOUT:-300}" bash "$d/$1.sh" >/dev/null || failed+=("$1")
  cat "$OUT/$1.txt" 2>/dev/null
}
{
  echo "sluice $(git -C "$d" describe --always --dirty 2>/dev/null), $(nproc) cores, $(date -u +%FT%TZ), RUNS=$RUNS C=${C:-10} M=${M:-10}"
  scenario healthz "${N_HEALTHZ:-100000}"
  scenario put-record "${N_PUT1:-100000}"
  scenario put-records "${N_PUT500:-2000}"
  scenario put-records-large "${N_PUTLARGE:-500}"
  scenario get-records "${N_GET:-500}"
  [ -n "${ENDPOINT:-}" ] || scenario durability "${N_DURABILITY:-2000}"
} | tee "$OUT/summary.txt"
# the C fan-out benchmark (fanout.c), when it has been built: RUNS runs of the
# issue's latency scenario (its defaults: 10 consumers on one shard, 1000
# records/s, 10 s; with durability interval:100 and the client on one thread,
# see fanout.c) unless FANOUT_ARGS replaces those flags
fan=$BUILD/loadtest/sluice-bench-fanout
if [ -x "$fan" ] && [ -z "${ENDPOINT:-}" ] && [ "${FANOUT:-1}" = 1 ]; then
  : >"$OUT/fanout.txt"
  for i in $(seq "$RUNS"); do
    echo "=== fanout run $i $(date -u +%T)" >&2
    timeout "${SCENARIO_TIMEOUT:-300}" "$fan" --sluice "$BUILD/gateway/sluice" ${FANOUT_ARGS:---one-thread --gw-arg --durability --gw-arg interval:100} >>"$OUT/fanout.txt" 2>&1 ||
      failed+=("fanout run $i")
  done
  grep '^{' "$OUT/fanout.txt" >"$OUT/fanout.json" || true
  tee -a "$OUT/summary.txt" <"$OUT/fanout.txt"
fi
for f in "$OUT"/*.json; do [ "$f" = "$OUT/results.json" ] || cat "$f"; done >"$OUT/results.json"
echo "run-all: $(( $(date +%s) - t0 )) s; results in $OUT/results.json, tables in $OUT/summary.txt, plots $OUT/*.png" >&2
[ ${#failed[@]} = 0 ] || { echo "run-all: failed: ${failed[*]}" >&2; exit 1; }
