#!/usr/bin/env bash
# h2load on the Kinesis door's write path: PutRecord (one 100-byte record) and
# PutRecords (500 x 100-byte records), over h2c, against a fresh gateway; and
# the same h2load settings POSTing the same PutRecord body to nghttpd, for
# scale. Prints median req/s, records/s and latency of RUNS runs, plus one JSON
# line per scenario.
#
#   bash loadtest/put.sh [build-dir]      (default build/)
#   RUNS=3 DURABILITY=interval:100 C=10 M=10 N1=200000 N500=4000 bash loadtest/put.sh
#
# Bodies are generated here with varying partition keys (not committed).
# Binds 127.0.0.1 only; each run is bounded by its request count and a
# timeout; every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
RUNS=${RUNS:-3} C=${C:-10} M=${M:-10} N1=${N1:-200000} N500=${N500:-4000}
DURABILITY=${DURABILITY:-interval:100}
bin=$build/gateway/sluice
[ -x "$bin" ] || { echo "build first: $bin not found" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" --listen 127.0.0.1:0 --data-dir "$tmp/data" --durability "$DURABILITY" \
  --log-level info 2>"$tmp/sluice.log" &
pids+=($!)
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*"event":"listening".*"port":"\([0-9]*\)".*/\1/p' "$tmp/sluice.log" | head -1)
  [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || { echo "sluice did not start" >&2; cat "$tmp/sluice.log" >&2; exit 1; }
url="http://127.0.0.1:$port/"
curl -sf -X POST "$url" -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'X-Amz-Target: Kinesis_20131202.CreateStream' -d '{"StreamName":"bench","ShardCount":4}'
sleep 0.2

python3 - "$tmp" <<'PY'
import base64, json, sys
d = sys.argv[1]
data = base64.b64encode(bytes(range(100))).decode()
json.dump({"StreamName": "bench", "Data": data, "PartitionKey": "key-1"}, open(d + "/put1.json", "w"))
json.dump({"StreamName": "bench", "Records": [{"Data": data, "PartitionKey": "key-%d" % i} for i in range(500)]},
          open(d + "/put500.json", "w"))
PY

mkdir -p "$tmp/www"
echo '{"ShardId":"shardId-000000000000","SequenceNumber":"1","EncryptionType":"NONE"}' > "$tmp/www/put"
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nghttpd --no-tls -a 127.0.0.1 -d "$tmp/www" "$nport" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# run NAME URL BODY N TARGET -> lines "rps p50 p99" (latency from h2load's
# per-request "time for request" min/mean/max/sd row: mean as the typical, and
# max as the worst; h2load prints no percentiles, so p50/p99 come from its
# --log-file of per-request times).
run() {
  local url=$1 body=$2 n=$3 target=$4
  for i in $(seq "$RUNS"); do
    log="$tmp/h2load.$i.log"
    out=$(timeout 300 h2load -n "$n" -c "$C" -m "$M" -d "$body" \
      -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: Kinesis_20131202.$target" \
      --log-file="$log" "$url")
    echo "$out" | grep -q " 0 failed, 0 errored" || { echo "failures: $out" >&2; exit 1; }
    echo "$out" | grep -q "$n 2xx" || { echo "non-2xx answers: $out" >&2; exit 1; }
    rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    # log columns: start time (us), status, duration (us)
    read -r p50 p99 < <(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.5)], a[int(NR*0.99)]}')
    echo "$rps $p50 $p99"
  done
}
report() { # name records-per-request lines...
  local name=$1 per=$2; shift 2
  local rps p50 p99
  rps=$(printf '%s\n' "$@" | awk '{print $1}' | median)
  p50=$(printf '%s\n' "$@" | awk '{print $2}' | median)
  p99=$(printf '%s\n' "$@" | awk '{print $3}' | median)
  awk -v n="$name" -v r="$rps" -v per="$per" -v a="$p50" -v b="$p99" 'BEGIN {
    printf "  %-28s %10.0f req/s %12.0f records/s   p50 %7.0f us   p99 %7.0f us\n", n, r, r*per, a, b }'
  printf '{"scenario":"%s","durability":"%s","c":%s,"m":%s,"runs":%s,"req_per_s":%s,"records_per_s":%s,"p50_us":%s,"p99_us":%s}\n' \
    "$name" "$DURABILITY" "$C" "$M" "$RUNS" "$rps" "$(awk -v r="$rps" -v p="$per" 'BEGIN{print r*p}')" "$p50" "$p99" >> "$tmp/json"
}
mapfile -t a < <(run "$url" "$tmp/put1.json" "$N1" PutRecord)
mapfile -t b < <(run "$url" "$tmp/put500.json" "$N500" PutRecords)
mapfile -t c < <(run "http://127.0.0.1:$nport/put" "$tmp/put1.json" "$N1" PutRecord)
echo "h2load -c $C -m $M over h2c, durability $DURABILITY, median of $RUNS runs, $(nproc) cores"
report "PutRecord 1x100B" 1 "${a[@]}"
report "PutRecords 500x100B" 500 "${b[@]}"
report "nghttpd POST (same body)" 1 "${c[@]}"
cat "$tmp/json"
