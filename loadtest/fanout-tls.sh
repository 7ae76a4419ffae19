#!/usr/bin/env bash
# SubscribeToShard push latency over TLS against h2c: sluice-bench-fanout's
# latency scenario (10 consumers on one shard, 1,000 records/s of 100 B,
# --one-thread, --durability interval:100) with every connection over h2c,
# then over TLS (ALPN h2), alternating, RUNS times each; medians of the
# per-run send->receipt p50/p99 and of the gateway's CPU.
#   bash loadtest/fanout-tls.sh [build-dir]      RUNS=3 DURATION=10
#   SLUICE=/other/build/gateway/sluice bash loadtest/fanout-tls.sh build-rel
# Everything binds 127.0.0.1; each run is bounded by DURATION and TIMEOUT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-${1:-$root/build}}
RUNS=${RUNS:-3} DURATION=${DURATION:-10} TIMEOUT=${TIMEOUT:-120}
SLUICE=${SLUICE:-$BUILD/gateway/sluice}
fan=$BUILD/loadtest/sluice-bench-fanout
[ -x "$fan" ] || { echo "build sluice-bench-fanout first ($fan; cmake -DSLUICE_BENCH=ON)" >&2; exit 1; }
[ -x "$SLUICE" ] || { echo "no gateway at $SLUICE (set BUILD or SLUICE)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sluice-fanout-tls.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
out=${OUT:-$root/loadtest/out}
mkdir -p "$out"
for run in $(seq "$RUNS"); do
  for proto in h2c tls; do
    flag=() && [ "$proto" = tls ] && flag=(--tls)
    timeout "$TIMEOUT" "$fan" --sluice "$SLUICE" --one-thread --duration "$DURATION" \
      --gw-arg --durability --gw-arg interval:100 --gw-arg --tls-cert --gw-arg "$tmp/cert.pem" \
      --gw-arg --tls-key --gw-arg "$tmp/key.pem" --label "$proto" "${flag[@]}" 2>/dev/null |
      grep '^{' >>"$tmp/runs.json" || { echo "run $run ($proto) failed" >&2; exit 1; }
  done
done
cp "$tmp/runs.json" "$out/fanout-tls.json"
python3 - "$tmp/runs.json" "$SLUICE" <<'PY' | tee "$out/fanout-tls.txt"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f"fanout-tls: {sys.argv[2]}, 10 consumers, 1000 rec/s x 100 B, median of {len(runs)//2} runs each")
print(f"{'proto':6} {'p50 us':>8} {'p99 us':>8} {'cpu %':>6}  lost/dup")
med = {}
for proto in ("h2c", "tls"):
    rs = [r for r in runs if r["label"] == proto]
    bad = sum(r["integrity"]["lost"] + r["integrity"]["duplicated"] for r in rs)
    p50 = statistics.median(r["latency_send_us"]["p50"] for r in rs)
    p99 = statistics.median(r["latency_send_us"]["p99"] for r in rs)
    cpu = statistics.median(r["gateway"]["cpu_pct"] for r in rs)
    med[proto] = p50
    print(f"{proto:6} {p50:8.0f} {p99:8.0f} {cpu:6.1f}  {bad}")
    if bad:
        sys.exit("records were lost or duplicated")
print(f"tls/h2c p50 ratio {med['tls'] / med['h2c']:.2f}")
PY
