#!/usr/bin/env bash
# h2load against GET /healthz on sluice, and the same h2load settings against
# nghttpd serving a file of the same size, for scale. Each side runs RUNS
# times; the median req/s is printed with the ratio.
#
#   bash loadtest/healthz.sh [build-dir]        (default build/)
#   RUNS=5 N=200000 C=50 M=10 bash loadtest/healthz.sh
#
# Binds 127.0.0.1 only, bounded in requests (N per run) and time (timeout per
# run), and stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
RUNS=${RUNS:-3} N=${N:-200000} C=${C:-50} M=${M:-10}
bin=$build/gateway/sluice
[ -x "$bin" ] || { echo "build first: $bin not found" >&2; exit 1; }
command -v h2load >/dev/null && command -v nghttpd >/dev/null ||
  { echo "needs h2load and nghttpd (apt-get install nghttp2-client nghttp2-server)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" --listen 127.0.0.1:0 --data-dir "$tmp/data" 2>"$tmp/sluice.log" &
pids+=($!)
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*"event":"listening".*"port":"\([0-9]*\)".*/\1/p' "$tmp/sluice.log" | head -1)
  [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || { echo "sluice did not start" >&2; cat "$tmp/sluice.log" >&2; exit 1; }

# nghttpd serves the same bytes /healthz returns.
mkdir -p "$tmp/www"
curl -s "http://127.0.0.1:$port/healthz" > "$tmp/www/healthz"
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nghttpd --no-tls -a 127.0.0.1 -d "$tmp/www" "$nport" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
bench() { # url -> req/s per run
  for _ in $(seq "$RUNS"); do
    out=$(timeout 120 h2load -n "$N" -c "$C" -m "$M" "$1")
    echo "$out" | grep -q "0 failed, 0 errored" || { echo "failures: $out" >&2; exit 1; }
    echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p'
  done
}
s=$(bench "http://127.0.0.1:$port/healthz" | median)
n=$(bench "http://127.0.0.1:$nport/healthz" | median)
printf 'h2load -n %s -c %s -m %s, median of %s runs on %s cores\n' "$N" "$C" "$M" "$RUNS" "$(nproc)"
printf '  sluice  GET /healthz  %10.0f req/s\n' "$s"
printf '  nghttpd static file   %10.0f req/s\n' "$n"
awk -v s="$s" -v n="$n" 'BEGIN { printf "  ratio                 %10.2f\n", s / n }'
printf '{"scenario":"healthz","n":%s,"c":%s,"m":%s,"runs":%s,"sluice_rps":%s,"nghttpd_rps":%s}\n' \
  "$N" "$C" "$M" "$RUNS" "$s" "$n"
