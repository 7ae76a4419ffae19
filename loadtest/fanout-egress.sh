#!/usr/bin/env bash
# Fan-out egress: how many pushed bytes per second the fan-out engine
# sustains. CONSUMERS (default "1 10 100") consumers subscribe to one shard,
# one h2c connection each, with the token bucket lifted (--consumer-rate 0:
# unlimited, a benchmark-only setting), while a producer writes flat out.
# Reported per run: records/s and MiB/s of record data delivered over all
# consumers (sluice-bench-fanout's count), the event-stream MiB/s that
# carried them (sluice_sent_bytes_total), gateway CPU and peak RSS. The
# ceiling in the same run: nghttpd serving a file of the event size to the
# same number of h2c connections (h2load download, DURATION seconds),
# right after each gateway run; events/ceiling is the median of the runs'
# own ratios, each taken from two measurements seconds apart.
# CLIENT=h2load replaces the benchmark's client by one h2load process per
# consumer (it counts bytes and parses nothing, so the client stops being
# the limit) and an h2load producer of PutRecords; records are then not
# checked, only event bytes/s and CPU are reported. PRODUCER sets that
# producer's h2load connections and streams (default "-c 1 -m 4").
#   bash loadtest/fanout-egress.sh [build-dir]   RUNS=3 SIZE=1000 DURATION=5
# Everything binds 127.0.0.1; every run is bounded by DURATION and TIMEOUT.
BASELINE=1
source "$(dirname "$0")/lib.sh"
lt_init fanout-egress
CONSUMERS=${CONSUMERS:-1 10 100} SIZE=${SIZE:-1000} DURATION=${DURATION:-5}
# With the producer flat out, 100 consumers on one client thread fall seconds
# behind: the drain lets them catch up (it ends once all is delivered).
DRAIN=${DRAIN:-30} CLIENT=${CLIENT:-bench}
fan=$BUILD/loadtest/sluice-bench-fanout
[ "$CLIENT" = h2load ] || [ -x "$fan" ] || lt_die "build sluice-bench-fanout first ($fan; cmake -DSLUICE_BENCH=ON)"
lt_start_nghttpd
# A file the size of one pushed event of 500 records, for the download ceiling.
head -c $((SIZE * 500 * 4 / 3 + 4096)) /dev/urandom >"$LT_TMP/www/event"

printf '%-10s %-4s %12s %12s %12s %8s %12s %14s\n' consumers run "rec/s" "record MiB/s" \
  "event MiB/s" "cpu %" "VmHWM KiB" "ceiling MiB/s" | tee "$OUT/fanout-egress.txt"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sent_bytes() { curl -s "http://$LT_HOST/metrics" | awk '$1 == "sluice_sent_bytes_total" {print $2}'; }
# Gateway CPU % between two cpu_ticks/wall-clock readings: T0 T1 W0 W1.
cpu_pct() {
  python3 -c 'import os, sys; print(100 * (int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf("SC_CLK_TCK") / (float(sys.argv[4]) - float(sys.argv[3])))' "$@"
}
ratio() { python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$1" "$2"; }
# The download ceiling for C connections, in MiB/s, over DURATION seconds
# like the gateway's run (a fixed count finished in under a second, too short
# for this machine's swings).
ceiling() {
  local h
  h=$(timeout "$TIMEOUT" h2load -D "$DURATION" -c "$1" -m 1 "http://127.0.0.1:$LT_NPORT/event" 2>&1 |
    sed -n 's/^finished in .*, \([0-9.]*\)\([KMG]\)B\/s$/\1 \2/p')
  python3 -c 'import sys; v, u = sys.argv[1], sys.argv[2]; print(float(v) * {"K": 1/1024, "M": 1, "G": 1024}[u])' $h
}
# CLIENT=h2load: C consumers registered on a one-shard stream, one h2load
# subscriber each (LATEST, for DURATION), a PutRecords h2load producer flat
# out meanwhile; event bytes are what the subscribers received.
h2load_run() {
  local c=$1 arn i d=$LT_TMP/h2l-$c-$run t0 t1 w0 w1 got pids=()
  mkdir -p "$d"
  lt_stream egress 1
  arn=$(lt_kinesis DescribeStreamSummary '{"StreamName":"egress"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["StreamDescriptionSummary"]["StreamARN"])')
  for i in $(seq "$c"); do
    lt_kinesis RegisterStreamConsumer "{\"StreamARN\":\"$arn\",\"ConsumerName\":\"c$i\"}" |
      python3 -c 'import json, sys; a = json.load(sys.stdin)["Consumer"]["ConsumerARN"]
print(json.dumps({"ConsumerARN": a, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": "LATEST"}}))' >"$d/sub$i.json"
  done
  python3 -c 'import base64, json, os, sys
n = int(sys.argv[1])
print(json.dumps({"StreamName": "egress", "Records": [{"PartitionKey": "k%d" % i, "Data": base64.b64encode(os.urandom(n)).decode()} for i in range(500)]}))' "$SIZE" >"$d/put.json"
  sleep 1 # consumers ACTIVE
  t0=$(cpu_ticks "$LT_PID") w0=$(date +%s.%N)
  for i in $(seq "$c"); do
    timeout "$TIMEOUT" h2load -c 1 -m 1 -n 1 -D "$((DURATION + 3))" -d "$d/sub$i.json" -H 'content-type: application/x-amz-json-1.1' \
      -H 'x-amz-target: Kinesis_20131202.SubscribeToShard' "http://$LT_HOST/" >"$d/out$i.txt" 2>&1 &
    pids+=($!)
  done
  # The subscribers outlast the producer (1 s before, 2 s after): what they
  # receive is what the producer's DURATION seconds pushed.
  sleep 1
  timeout "$TIMEOUT" h2load ${PRODUCER:--c 1 -m 4} -D "$DURATION" -d "$d/put.json" -H 'content-type: application/x-amz-json-1.1' \
    -H 'x-amz-target: Kinesis_20131202.PutRecords' "http://$LT_HOST/" >"$d/put.txt" 2>&1 || true
  wait "${pids[@]}" # not a bare wait: nghttpd runs in the background too
  t1=$(cpu_ticks "$LT_PID") w1=$(date +%s.%N)
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$LT_PID/status")
  kill "$LT_PID"; wait "$LT_PID" 2>/dev/null || true
  got=$(cat "$d"/out*.txt | sed -n 's/^traffic: .*(\([0-9]*\)) data$/\1/p' | awk '{s += $1} END {printf "%.0f\n", s}')
  [ "$got" -gt 0 ] || { tail -3 "$d/out1.txt" >&2; lt_die "the h2load subscribers received nothing"; }
  r=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$d/put.txt")
  r=$(python3 -c 'import sys; print(int(sys.argv[1]) * 500 / float(sys.argv[2]))' "${r:-0}" "$DURATION")
  m=0
  w=$(python3 -c 'import sys; print(int(sys.argv[1]) / 1048576 / float(sys.argv[2]))' "$got" "$DURATION")
  cp=$(cpu_pct "$t0" "$t1" "$w0" "$w1")
  ce=$(ceiling "$c")
  printf '%-10s %-4s %12.0f %12s %12.1f %8.0f %12s %14.1f\n' "$c" "$run" "$r" "-" "$w" "$cp" "$rss" "$ce" |
    tee -a "$OUT/fanout-egress.txt"
  mib+=("$m") wire+=("$w") rec+=("$r") ceil+=("$ce") cpu+=("$cp") rat+=("$(ratio "$w" "$ce")")
}
for c in $CONSUMERS; do
  mib=() wire=() rec=() ceil=() cpu=() rat=()
  for run in $(seq "$RUNS"); do
    lt_start_sluice "egress-$c-$run" --consumer-rate "${CONSUMER_RATE:-0}" --max-consumers $((c + 10)) \
      --durability interval:100
    if [ "$CLIENT" = h2load ]; then
      h2load_run "$c"
      continue
    fi
    s0=$(sent_bytes) t0=$(cpu_ticks "$LT_PID") w0=$(date +%s.%N)
    j=$(timeout "$TIMEOUT" "$fan" --endpoint "$LT_HOST" --one-thread --streams 1 --shards 1 \
      --consumers "$c" --subs "$c" --conns "$c" --rate 0 --size "$SIZE" --batch 500 \
      --duration "$DURATION" --drain "$DRAIN" --label "egress-$c" 2>"$OUT/logs/fanout-egress/bench-$c-$run.log" |
      grep '^{' || true)
    s1=$(sent_bytes) t1=$(cpu_ticks "$LT_PID") w1=$(date +%s.%N)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$LT_PID/status")
    kill "$LT_PID"; wait "$LT_PID" 2>/dev/null || true
    [ -n "$j" ] || { tail -5 "$OUT/logs/fanout-egress/bench-$c-$run.log" >&2; lt_die "the benchmark failed"; }
    # Record data delivered (the benchmark's count) and the event-stream bytes
    # that carried it (the gateway's sluice_sent_bytes_total over the run, in
    # proportion).
    vals=$(python3 -c '
import json, sys
j = json.loads(sys.argv[1]); size = int(sys.argv[2]); sent = float(sys.argv[3])
bad = {k: v for k, v in j["integrity"].items() if v and k != "resubscribes"}
if bad:
    sys.exit(f"integrity: {bad}")
cs = j["consumers"]
rec_s = sum(c["rec_s"] for c in cs); mib_s = sum(c["mib_s"] for c in cs)
delivered = sum(c["delivered"] for c in cs) * size
print(rec_s, mib_s, mib_s * sent / delivered if delivered else 0)
' "$j" "$SIZE" "$((s1 - s0))") || lt_die "run $run with $c consumers lost or duplicated records"
    read -r r m w <<<"$vals"
    cp=$(cpu_pct "$t0" "$t1" "$w0" "$w1")
    # The ceiling: the same number of h2c connections downloading the file.
    ce=$(ceiling "$c")
    printf '%-10s %-4s %12.0f %12.1f %12.1f %8.0f %12s %14.1f\n' "$c" "$run" "$r" "$m" "$w" "$cp" "$rss" "$ce" |
      tee -a "$OUT/fanout-egress.txt"
    mib+=("$m") wire+=("$w") rec+=("$r") ceil+=("$ce") cpu+=("$cp") rat+=("$(ratio "$w" "$ce")")
  done
  med() { printf '%s\n' "$@" | lt_median; }
  if [ "$CLIENT" = h2load ]; then
    printf 'median %s consumers (h2load): %.1f MiB/s of events received, producer %.0f rec/s, gateway CPU %.0f%%; ceiling %.1f MiB/s (events/ceiling %.2f)\n' \
      "$c" "$(med "${wire[@]}")" "$(med "${rec[@]}")" "$(med "${cpu[@]}")" "$(med "${ceil[@]}")" \
      "$(med "${rat[@]}")" |
      tee -a "$OUT/fanout-egress.txt"
    continue
  fi
  printf 'median %s consumers: %.0f rec/s, %.1f MiB/s of records in %.1f MiB/s of events, gateway CPU %.0f%%; ceiling %.1f MiB/s (events/ceiling %.2f)\n' \
    "$c" "$(med "${rec[@]}")" "$(med "${mib[@]}")" "$(med "${wire[@]}")" "$(med "${cpu[@]}")" "$(med "${ceil[@]}")" \
    "$(med "${rat[@]}")" |
    tee -a "$OUT/fanout-egress.txt"
done
