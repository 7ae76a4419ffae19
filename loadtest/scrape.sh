#!/usr/bin/env bash
# GET /metrics with SHARDS shards under enhanced monitoring (ALL), and what a
# scrape costs everyone else: a probe sends GET /healthz back to back on one
# keep-alive connection, first alone, then while the scrape runs; the
# difference in the probe's worst latency is the longest the scrape held the
# event loop.
#   bash loadtest/scrape.sh [build-dir]        SHARDS=10000 RUNS=3 SCRAPES=10
# Prints, per run: scrape bytes and median seconds (of SCRAPES back to back),
# probe p50/p99/max alone (2 s) and during the scrapes; then the medians. Everything binds 127.0.0.1.
BASELINE=0
source "$(dirname "$0")/lib.sh"
lt_init scrape
SHARDS=${SHARDS:-10000} SCRAPES=${SCRAPES:-10}
lt_start_sluice sluice --shard-limit "$SHARDS"
lt_stream scraped "$SHARDS"
lt_kinesis EnableEnhancedMonitoring '{"StreamName":"scraped","ShardLevelMetrics":["ALL"]}' >/dev/null
# Some traffic on every shard, so no series is zero: 50 PutRecords of 500
# records with explicit hash keys spread over the whole key space.
lt_py - "$SHARDS" <<'EOF' >"$LT_TMP/puts.json"
import base64, json, sys
n = int(sys.argv[1])
batches = []
for b in range(50):
    recs = []
    for i in range(500):
        k = (b * 500 + i) % n
        recs.append({"PartitionKey": "k", "Data": base64.b64encode(b"x" * 100).decode(),
                     "ExplicitHashKey": str((k * (2**128 // n)) + 1)})
    batches.append({"StreamName": "scraped", "Records": recs})
print("\n".join(json.dumps(b) for b in batches))
EOF
while read -r body; do lt_kinesis PutRecords "$body" >/dev/null; done <"$LT_TMP/puts.json"

cat >"$LT_TMP/probe.py" <<'EOF'
# Times GET /healthz back to back for the given seconds (or until the file
# "stop" appears); prints p50 p99 max in ms and the count.
import http.client, os, sys, time
host, port = sys.argv[1].split(":")
until = time.monotonic() + float(sys.argv[2])
c = http.client.HTTPConnection(host, int(port), timeout=30)
c.request("GET", "/healthz")
c.getresponse().read()
open("ready", "w").close()
lat = []
while time.monotonic() < until and not os.path.exists("stop"):
    t = time.perf_counter()
    c.request("GET", "/healthz")
    c.getresponse().read()
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{q(0.5):.3f} {q(0.99):.3f} {lat[-1]:.3f} {len(lat)}")
EOF

printf '%-4s %12s %10s %24s %24s\n' run bytes scrape_s "alone p50/p99/max ms" "scraping p50/p99/max ms" | tee "$OUT/scrape.txt"
secs=() bytes=() alone=() during=()
for run in $(seq "$RUNS"); do
  rm -f "$LT_TMP/stop" "$LT_TMP/ready"
  a=$(lt_py probe.py "$LT_HOST" 2)
  rm -f "$LT_TMP/ready"
  lt_py probe.py "$LT_HOST" 60 >"$LT_TMP/during" &
  probe=$!
  for _ in $(seq 100); do [ -e "$LT_TMP/ready" ] && break; sleep 0.05; done
  # SCRAPES scrapes back to back, so the probe sees many of them.
  ts=()
  for _ in $(seq "$SCRAPES"); do
    m=$(curl -s -o "$LT_TMP/metrics" -w '%{size_download} %{time_total}' "http://$LT_HOST/metrics")
    ts+=("${m#* }")
  done
  m="${m% *} $(printf '%s\n' "${ts[@]}" | lt_median)"
  touch "$LT_TMP/stop"
  wait "$probe"
  d=$(cat "$LT_TMP/during")
  read -r b s <<<"$m"
  printf '%-4s %12s %10s %24s %24s\n' "$run" "$b" "$s" "$(echo "$a" | cut -d' ' -f1-3 | tr ' ' /)" \
    "$(echo "$d" | cut -d' ' -f1-3 | tr ' ' /)" | tee -a "$OUT/scrape.txt"
  secs+=("$s") bytes+=("$b") alone+=("$(echo "$a" | cut -d' ' -f3)") during+=("$(echo "$d" | cut -d' ' -f3)")
done
med() { printf '%s\n' "$@" | lt_median; }
printf 'median: %s bytes, scrape %s s, probe max alone %s ms, during the scrape %s ms (%s shards, %s series lines)\n' \
  "$(med "${bytes[@]}")" "$(med "${secs[@]}")" "$(med "${alone[@]}")" "$(med "${during[@]}")" "$SHARDS" \
  "$(grep -vc '^#' "$LT_TMP/metrics")" | tee -a "$OUT/scrape.txt"
# The gateway's own account of the loop time: CPU time per slice of every
# scrape so far (sluice_scrape_slice_seconds), from the last scrape's text.
curl -s "http://$LT_HOST/metrics" | lt_py -c '
import sys
b, s, c = [], 0.0, 0
for line in sys.stdin:
    if line.startswith("sluice_scrape_slice_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        b.append((float("inf") if le == "+Inf" else float(le), int(line.split()[-1])))
    elif line.startswith("sluice_scrape_slice_seconds_sum"): s = float(line.split()[-1])
    elif line.startswith("sluice_scrape_slice_seconds_count"): c = int(line.split()[-1])
worst = next(le for le, n in b if n == c)
p99 = next(le for le, n in b if n >= 0.99 * c)
print(f"loop time per scrape slice: {c} slices, mean {s / c * 1e3:.3f} ms, p99 <= {p99 * 1e3:g} ms, max <= {worst * 1e3:g} ms")
' | tee -a "$OUT/scrape.txt"
