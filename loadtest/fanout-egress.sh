#!/usr/bin/env bash
# Fan-out egress: how many pushed bytes per second the fan-out engine
# sustains. CONSUMERS (default "1 10 100") consumers subscribe to one shard,
# one h2c connection each, with the token bucket lifted (--consumer-rate 0:
# unlimited, a benchmark-only setting), while a producer writes flat out.
# Reported per run: records/s and MiB/s of record data delivered over all
# consumers (sluice-bench-fanout's count), the event-stream MiB/s that
# carried them (sluice_sent_bytes_total), gateway CPU and peak RSS. The
# ceiling in the same run: nghttpd serving a file of the event size to the
# same number of h2c connections (h2load download), alternating with the
# gateway.
#   bash loadtest/fanout-egress.sh [build-dir]   RUNS=3 SIZE=1000 DURATION=5
# Everything binds 127.0.0.1; every run is bounded by DURATION and TIMEOUT.
BASELINE=1
source "$(dirname "$0")/lib.sh"
lt_init fanout-egress
CONSUMERS=${CONSUMERS:-1 10 100} SIZE=${SIZE:-1000} DURATION=${DURATION:-5}
# With the producer flat out, 100 consumers on one client thread fall seconds
# behind: the drain lets them catch up (it ends once all is delivered).
DRAIN=${DRAIN:-30}
fan=$BUILD/loadtest/sluice-bench-fanout
[ -x "$fan" ] || lt_die "build sluice-bench-fanout first ($fan; cmake -DSLUICE_BENCH=ON)"
lt_start_nghttpd
# A file the size of one pushed event of 500 records, for the download ceiling.
head -c $((SIZE * 500 * 4 / 3 + 4096)) /dev/urandom >"$LT_TMP/www/event"

printf '%-10s %-4s %12s %12s %12s %8s %12s %14s\n' consumers run "rec/s" "record MiB/s" \
  "event MiB/s" "cpu %" "VmHWM KiB" "ceiling MiB/s" | tee "$OUT/fanout-egress.txt"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sent_bytes() { curl -s "http://$LT_HOST/metrics" | awk '$1 == "sluice_sent_bytes_total" {print $2}'; }
for c in $CONSUMERS; do
  mib=() wire=() rec=() ceil=() cpu=()
  for run in $(seq "$RUNS"); do
    lt_start_sluice "egress-$c-$run" --consumer-rate "${CONSUMER_RATE:-0}" --max-consumers $((c + 10)) \
      --durability interval:100
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
    cp=$(python3 -c 'import os, sys; print(100 * (int(sys.argv[1]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK") / (float(sys.argv[3]) - float(sys.argv[4])))' "$t1" "$t0" "$w1" "$w0")
    # The ceiling: the same number of h2c connections downloading the file.
    n=$(( c * 200 < 2000 ? 2000 : c * 200 ))
    h=$(timeout "$TIMEOUT" h2load -n "$n" -c "$c" -m 1 "http://127.0.0.1:$LT_NPORT/event" 2>&1 |
      sed -n 's/^finished in .*, \([0-9.]*\)\([KMG]\)B\/s$/\1 \2/p')
    ce=$(python3 -c 'import sys; v, u = sys.argv[1], sys.argv[2]; print(float(v) * {"K": 1/1024, "M": 1, "G": 1024}[u])' $h)
    printf '%-10s %-4s %12.0f %12.1f %12.1f %8.0f %12s %14.1f\n' "$c" "$run" "$r" "$m" "$w" "$cp" "$rss" "$ce" |
      tee -a "$OUT/fanout-egress.txt"
    mib+=("$m") wire+=("$w") rec+=("$r") ceil+=("$ce") cpu+=("$cp")
  done
  med() { printf '%s\n' "$@" | lt_median; }
  printf 'median %s consumers: %.0f rec/s, %.1f MiB/s of records in %.1f MiB/s of events, gateway CPU %.0f%%; ceiling %.1f MiB/s (events/ceiling %.2f)\n' \
    "$c" "$(med "${rec[@]}")" "$(med "${mib[@]}")" "$(med "${wire[@]}")" "$(med "${cpu[@]}")" "$(med "${ceil[@]}")" \
    "$(python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$(med "${wire[@]}")" "$(med "${ceil[@]}")")" |
    tee -a "$OUT/fanout-egress.txt"
done
