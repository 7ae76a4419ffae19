#!/usr/bin/env bash
# The jetstream backend against its ceiling (issue 15): in one run, for each
# replica count in REPLICAS (default "1 3": R1 on one nats-server, R3 on a
# 3-node cluster, both from tests/lib/nats-cluster.sh on loopback), RUNS (3)
# rounds of, in this order:
#   put embedded   PutRecords 500 x 100 B (500 random partition keys, stream
#                  of 4 shards), h2c, h2load -c C -m M (put-records.sh's main
#                  row), N_EMB (1000) requests, against a gateway on the
#                  embedded store with --durability always
#   put jetstream  the same body, N_JS (400) requests, against a gateway with
#                  --backend jetstream --nats-replicas R (its own prefix)
#   publish        sluice-bench-jetstream --mode publish: COUNT (100000)
#                  async publishes of 100 B, WINDOW (4096) unacked at most
#                  (jetstream-ceiling.sh's flags): the ceiling
#   publish design the same with --msg-id --follow: every message with a
#                  Nats-Msg-Id and delivered to an ordered consumer while
#                  published, which is what the backend asks of the servers
#                  per record (de-duplication, and each gateway's copy)
#                  without any gateway: how much of the ceiling the design
#                  leaves (DESIGN=0 skips it)
#   latency        sluice-bench-jetstream --mode latency --send-asap: RATE
#                  (1000) msgs/s for LAT_DURATION (5) s, publish -> receive
#   fanout         sluice-bench-fanout --one-thread, 10 consumers on one
#                  shard, 1000 records/s of 100 B for FO_DURATION (5) s,
#                  against a fresh jetstream gateway (fresh prefix) started
#                  here (--endpoint, so its log is kept); send -> receipt
#   fanout emb     the same on the embedded store with --durability
#                  FO_EMB_DURABILITY (interval:100, run-all.sh's latency
#                  scenario; "always" adds an fsync before every push), for
#                  scale (FANOUT_EMBEDDED=0 skips it)
# then prints medians over the rounds and the issue's two ratios: PutRecords
# on jetstream / the publish ceiling (target >= 0.8 at R3) and fan-out
# send -> receipt p50 / JetStream publish -> receive p50 (target <= 2).
#
#   BUILD=/tmp/rel bash loadtest/jetstream-backend.sh      ~6 min on 2 cores
#   RUNS=5 REPLICAS=3 N_JS=200 bash loadtest/jetstream-backend.sh build-rel
#
# Output: OUT/jetstream-backend.txt (the table), OUT/jetstream-backend.json
# (every run, one JSON line each), OUT/logs/jetstream-backend/ (h2load
# output, bench output, every gateway's log, the nats-server logs, a count
# of the gateways' warn/error lines). Everything binds 127.0.0.1; every
# run is bounded (h2load: TIMEOUT s; the benches: --duration and TIMEOUT);
# gateways and nats-servers are stopped by PID on exit; one scenario at a
# time per OUT (lib.sh's lock).
BASELINE=${BASELINE:-0} PROTOS=h2c
source "$(dirname "$0")/lib.sh"
REPLICAS=${REPLICAS:-1 3} N_JS=${N_JS:-400} N_EMB=${N_EMB:-1000}
COUNT=${COUNT:-100000} WINDOW=${WINDOW:-4096} RATE=${RATE:-1000} LAT_DURATION=${LAT_DURATION:-5}
FO_DURATION=${FO_DURATION:-5} FO_DRAIN=${FO_DRAIN:-5} FANOUT_EMBEDDED=${FANOUT_EMBEDDED:-1}
FO_EMB_DURABILITY=${FO_EMB_DURABILITY:-interval:100} DESIGN=${DESIGN:-1}
jsbench=$BUILD/loadtest/sluice-bench-jetstream
fobench=$BUILD/loadtest/sluice-bench-fanout
cluster=$LT_ROOT/tests/lib/nats-cluster.sh

lt_init jetstream-backend
[ -x "$jsbench" ] || lt_die "no $jsbench (libnats-dev, -DSLUICE_BENCH=ON, build sluice-bench-jetstream)"
[ -x "$fobench" ] || lt_die "no $fobench (build sluice-bench-fanout)"
command -v nats-server >/dev/null || lt_die "needs nats-server"
LOGS=$OUT/logs/jetstream-backend
rm -f "$LOGS"/*.txt "$OUT/jetstream-backend.json"
RES=$LT_TMP/results.jsonl
: >"$RES"
NATS_DIR_=$LT_TMP/nats

# Gateways first (they would log NATS disconnects), then the nats-servers.
declare -A GWLOG=() GWDIR=()
js_cleanup() {
  local p
  for p in "${LT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${LT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  LT_PIDS=()
  if [ -s "$NATS_DIR_/ports" ]; then bash "$cluster" stop --dir "$NATS_DIR_" || true; fi
  lt_cleanup
}
trap js_cleanup EXIT

# gw_start NAME FLAGS...: lt_start_sluice, remembering the log and data dir.
gw_start() {
  local name=$1 d
  lt_start_sluice "$@"
  d=$(tr '\0' '\n' <"/proc/$LT_PID/cmdline" | sed -n '/^--data-dir$/{n;p}')
  GWDIR[$name]=$d GWLOG[$name]=$d.log
}

# gw_stop NAME: SIGTERM by PID (SIGKILL after 15 s), keep its log, drop its data.
gw_stop() {
  local name=$1 pid=${LT_GWPID[$1]} p keep=()
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${LT_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  LT_PIDS=("${keep[@]}")
  cp "${GWLOG[$name]}" "$LOGS/gw-$name.log" 2>/dev/null || true
  rm -rf "${GWDIR[$name]}"
  # warn/error lines, the start-up descriptor notice aside
  grep -E '"level":"(warn|error)"' "$LOGS/gw-$name.log" | grep -v '"event":"nofile"' \
    >"$LOGS/gw-$name.problems.txt" || true
  printf '{"kind":"gwlog","gateway":"%s","problems":%d}\n' "$name" \
    "$(wc -l <"$LOGS/gw-$name.problems.txt")" >>"$RES"
}

cpu_ticks() { # PIDS...: utime + stime of the processes, in clock ticks
  local p t=0 s
  for p in "$@"; do
    s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || s=0
    t=$((t + ${s:-0}))
  done
  echo "$t"
}

# stored TARGET: records the gateway accepted so far (its metrics): h2load
# counts a PutRecords reply with FailedRecordCount > 0 as a 2xx success.
stored() {
  curl -s --max-time 30 "http://${LT_HOSTS[$1]}/metrics" |
    awk '/^sluice_stream_incoming_records_total/ {s += $2} END {printf "%d\n", s}'
}

# put TARGET R RUN N: one h2load PutRecords run against gateway TARGET.
put() {
  local t=$1 r=$2 i=$3 n=$4 tag="put-$1-$3" out rps p50 p99 c0 n0 c1 n1 t0 t1 s0 s1
  s0=$(stored "$t")
  c0=$(cpu_ticks "${LT_GWPID[$t]}"); n0=$(cpu_ticks $NATS_PIDS); t0=$(date +%s.%N)
  out=$(lt_h2load "$LT_TMP/$tag.log" "$n" "$LT_TMP/body.json" PutRecords \
    "http://${LT_HOSTS[$t]}/" h2c)
  t1=$(date +%s.%N); c1=$(cpu_ticks "${LT_GWPID[$t]}"); n1=$(cpu_ticks $NATS_PIDS)
  s1=$(stored "$t")
  echo "$out" >"$LOGS/$tag.txt"
  if ! echo "$out" | grep -q " 0 failed, 0 errored" || ! echo "$out" | grep -q "$n 2xx"; then
    local e
    e=$(echo "$out" | grep -E '^(requests|status codes|finished)|rror' | tr '\n' ' ' | tr -d '"\\' | cut -c1-300)
    echo "jetstream-backend: PutRecords $t R$r run $i failed: $e" >&2
    printf '{"kind":"put","target":"%s","r":%s,"run":%s,"error":"%s"}\n' "$t" "$r" "$i" "$e" >>"$RES"
    return 0
  fi
  rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
  read -r p50 p99 < <(awk '{print $3}' "$LT_TMP/$tag.log" | sort -n |
    awk '{a[NR]=$1} END {i=int(NR*0.5); j=int(NR*0.99); if (i<1) i=1; if (j<1) j=1; print a[i], a[j]}')
  cp "$LT_TMP/$tag.log" "$LOGS/$tag.h2load.log"
  awk -v t="$t" -v r="$r" -v i="$i" -v n="$n" -v rps="$rps" -v a="$p50" -v b="$p99" \
    -v ok=$((s1 - s0)) -v gc=$((c1 - c0)) -v nc=$((n1 - n0)) -v w="$(echo "$t1 - $t0" | bc)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "{\"kind\":\"put\",\"target\":\"%s\",\"r\":%d,\"run\":%d,\"n\":%d,\"req_per_s\":%.1f,\"records_per_s\":%.0f,\"p50_us\":%d,\"p99_us\":%d,\"gw_cpu_pct\":%.0f,\"nats_cpu_pct\":%.0f,\"ok_records\":%d,\"failed_records\":%d,\"ok_records_per_s\":%.0f}\n",
      t, r, i, n, rps, rps * 500, a, b, 100 * gc / hz / w, 100 * nc / hz / w, ok, n * 500 - ok, ok * rps / n }' | tee -a "$RES" >&2
}

# jsb R RUN MODE ARGS...: one sluice-bench-jetstream run.
jsb() {
  local r=$1 i=$2 mode=$3 log
  shift 3
  log="$LOGS/jetstream-$mode-R$r-$i.txt"
  if ! timeout "$TIMEOUT" "$jsbench" --url "$NATS_URL" --replicas "$r" --size 100 "$@" >"$log" 2>&1; then
    echo "jetstream-backend: sluice-bench-jetstream $mode R$r run $i failed (log $log)" >&2
    tail -3 "$log" >&2
  fi
  grep '^{' "$log" | tail -1 | python3 -c '
import json, sys
j = json.loads(sys.stdin.read() or "{}")
j.update(kind=sys.argv[1], r=int(sys.argv[2]), run=int(sys.argv[3]))
print(json.dumps(j))' "$mode" "$r" "$i" | tee -a "$RES" >&2 || true
}

# fanout BACKEND R RUN: a fresh gateway, sluice-bench-fanout --endpoint on it.
fanout() {
  local b=$1 r=$2 i=$3 name="fo-$1-R$2-$3" log flags=()
  if [ "$b" = jetstream ]; then
    flags=(--backend jetstream --nats-url "$NATS_URL" --nats-replicas "$r" --nats-prefix "fo$r-$i-$$")
  else
    flags=(--durability "$FO_EMB_DURABILITY")
  fi
  gw_start "$name" "${flags[@]}"
  log="$LOGS/fanout-$b-R$r-$i.txt"
  if ! timeout "$TIMEOUT" "$fobench" --endpoint "${LT_HOSTS[$name]}" --one-thread --consumers 10 \
      --rate "$RATE" --duration "$FO_DURATION" --drain "$FO_DRAIN" --label "$b R$r" >"$log" 2>&1; then
    echo "jetstream-backend: sluice-bench-fanout $b R$r run $i failed (log $log)" >&2
    tail -3 "$log" >&2
  fi
  gw_stop "$name"
  grep '^{"bench"' "$log" | tail -1 | python3 -c '
import json, sys
j = json.loads(sys.stdin.read() or "{}")
s = j.get("latency_send_us", {})
o = dict(kind="fanout", target=sys.argv[1], r=int(sys.argv[2]), run=int(sys.argv[3]),
         p50_us=s.get("p50"), p99_us=s.get("p99"), max_us=s.get("max"), n=s.get("n"),
         first_p50_us=j.get("latency_first_us", {}).get("p50"),
         produced=j.get("produced"), acked=j.get("acked"), put_failed=j.get("put_failed"),
         lost=j.get("integrity", {}).get("lost"), duplicated=j.get("integrity", {}).get("duplicated"),
         failed_subscriptions=j.get("integrity", {}).get("failed_subscriptions"))
print(json.dumps(o))' "$b" "$r" "$i" | tee -a "$RES" >&2 || true
}

for r in $REPLICAS; do
  nodes=1
  [ "$r" -gt 1 ] && nodes=$((r < 3 ? 3 : r))
  info=$(bash "$cluster" up --nodes "$nodes" --dir "$NATS_DIR_") || lt_die "the NATS cluster did not start"
  NATS_URL=$(sed -n 's/^NATS_URL=//p' <<<"$info")
  NATS_PIDS=$(sed -n 's/^NATS_PIDS="\(.*\)"/\1/p' <<<"$info")
  echo "R$r on $nodes nats-server(s): $NATS_URL" >&2
  gw_start "emb-R$r" --durability always
  gw_start "js-R$r" --backend jetstream --nats-url "$NATS_URL" --nats-replicas "$r" --nats-prefix "put$r-$$"
  stream="bench-jsb-$$"
  lt_body body.json "$stream" 500 100
  for t in "emb-R$r" "js-R$r"; do
    LT_HOST=${LT_HOSTS[$t]}
    lt_stream "$stream" 4
    lt_kinesis PutRecords "@$LT_TMP/body.json" >"$LT_TMP/reply.json"
    grep -q '"FailedRecordCount":0' "$LT_TMP/reply.json" ||
      lt_die "PutRecords on $t failed: $(head -c 300 "$LT_TMP/reply.json")"
  done
  for i in $(seq "$RUNS"); do
    put "emb-R$r" "$r" "$i" "$N_EMB"
    put "js-R$r" "$r" "$i" "$N_JS"
    jsb "$r" "$i" publish --mode publish --count "$COUNT" --window "$WINDOW" --duration 60 \
      --label "publish R$r 100B"
    [ "$DESIGN" = 0 ] || jsb "$r" "$i" design --mode publish --count "$COUNT" --window "$WINDOW" \
      --duration 60 --msg-id --follow --label "publish design R$r 100B"
    jsb "$r" "$i" latency --mode latency --rate "$RATE" --duration "$LAT_DURATION" --send-asap \
      --label "latency R$r 100B"
    fanout jetstream "$r" "$i"
    [ "$FANOUT_EMBEDDED" = 0 ] || fanout embedded "$r" "$i"
    echo "  R$r round $i done" >&2
  done
  gw_stop "js-R$r"
  gw_stop "emb-R$r"
  bash "$cluster" stop --dir "$NATS_DIR_"
  for f in "$NATS_DIR_"/n*/nats.log; do
    n=$(basename "$(dirname "$f")")
    cp "$f" "$LOGS/nats-R$r-$n.log"
  done
  rm -rf "$NATS_DIR_"
done

cp "$RES" "$OUT/jetstream-backend.json"
python3 - "$RES" "$REPLICAS" "$RUNS" "$C" "$M" "$N_EMB" "$N_JS" "$(nproc)" "$FO_EMB_DURABILITY" <<'EOF' | tee "$OUT/jetstream-backend.txt"
import json, statistics, sys, time
res, replicas, runs, c, m, n_emb, n_js, cores, fo_dur = sys.argv[1], sys.argv[2].split(), *sys.argv[3:10]
rows = [json.loads(l) for l in open(res) if l.strip()]
def pick(kind, r, target=None):
    return [x for x in rows if x.get("kind") == kind and x.get("r") == int(r)
            and (target is None or x.get("target") == target)]
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
def spread(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return f"({min(xs):,.0f}-{max(xs):,.0f})" if xs else ""
print(f"jetstream-backend: medians of {runs} rounds, {cores} cores, "
      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
print("records/s: records the gateway accepted (its sluice_stream_incoming_records_total) per second of the h2load run")
print(f"PutRecords 500x100B h2c, h2load -c {c} -m {m}, -n {n_emb} (embedded) / {n_js} (jetstream); "
      "ceiling: sluice-bench-jetstream 100 B; fan-out: 10 consumers, 1 shard, 1000 rec/s, --one-thread")
for r in replicas:
    emb = pick("put", r, f"emb-R{r}"); js = pick("put", r, f"js-R{r}")
    pub = [x.get("publish", {}).get("msgs_per_s") for x in pick("publish", r)]
    des = [x.get("publish", {}).get("msgs_per_s") for x in pick("design", r)]
    lat = [x.get("latency", {}) for x in pick("latency", r)]
    foj = pick("fanout", r, "jetstream"); foe = pick("fanout", r, "embedded")
    e_rec = med([x.get("ok_records_per_s") for x in emb]); j_rec = med([x.get("ok_records_per_s") for x in js])
    ceil = med(pub)
    js_p50 = med([l.get("recv_p50_us") for l in lat]); js_p99 = med([l.get("recv_p99_us") for l in lat])
    fo_p50 = med([x.get("p50_us") for x in foj]); fo_p99 = med([x.get("p99_us") for x in foj])
    err = lambda xs: sum(1 for x in xs if "error" in x)
    print(f"\nR{r}")
    print(f"  {'PutRecords embedded (always)':<40} {f(e_rec):>10} records/s {spread([x.get('ok_records_per_s') for x in emb]):<22}"
          f" p50 {f(med([x.get('p50_us') for x in emb]))} p99 {f(med([x.get('p99_us') for x in emb]))} us,"
          f" gw CPU {f(med([x.get('gw_cpu_pct') for x in emb]))}%, failed runs {err(emb)},"
          f" failed records {sum(x.get('failed_records') or 0 for x in emb):,}")
    print(f"  {'PutRecords jetstream':<40} {f(j_rec):>10} records/s {spread([x.get('ok_records_per_s') for x in js]):<22}"
          f" p50 {f(med([x.get('p50_us') for x in js]))} p99 {f(med([x.get('p99_us') for x in js]))} us,"
          f" gw CPU {f(med([x.get('gw_cpu_pct') for x in js]))}%, nats CPU {f(med([x.get('nats_cpu_pct') for x in js]))}%, failed runs {err(js)},"
          f" failed records {sum(x.get('failed_records') or 0 for x in js):,}; attempted {f(med([x.get('records_per_s') for x in js]))}/s")
    print(f"  {'JetStream async publish 100 B (ceiling)':<40} {f(ceil):>10} msgs/s    {spread(pub):<22}")
    if des:
        d = med(des)
        print(f"  {'  with Nats-Msg-Id, followed (design)':<40} {f(d):>10} msgs/s    {spread(des):<22}"
              f" {f(d / ceil if d and ceil else None, 2)} of the ceiling: the most the design allows")
    print(f"  {'jetstream / ceiling':<40} {f(j_rec / ceil if j_rec and ceil else None, 2):>10}"
          f"   (target >= 0.8 at R3); jetstream / embedded {f(j_rec / e_rec if j_rec and e_rec else None, 2)}"
          + (f"; / design {f(j_rec / med(des) if j_rec and med(des) else None, 2)}" if des else ""))
    print(f"  {'fan-out send->receipt, jetstream':<40} p50 {f(fo_p50)} us {spread([x.get('p50_us') for x in foj])},"
          f" p99 {f(fo_p99)} us, max {f(med([x.get('max_us') for x in foj]))} us,"
          f" lost {sum(x.get('lost') or 0 for x in foj)}, put failed {sum(x.get('put_failed') or 0 for x in foj)}")
    if foe:
        print(f"  {'fan-out send->receipt, embedded ' + fo_dur:<40} p50 {f(med([x.get('p50_us') for x in foe]))} us,"
              f" p99 {f(med([x.get('p99_us') for x in foe]))} us")
    print(f"  {'JetStream publish->receive (send-asap)':<40} p50 {f(js_p50)} us {spread([l.get('recv_p50_us') for l in lat])},"
          f" p99 {f(js_p99)} us, PubAck p50 {f(med([l.get('ack_p50_us') for l in lat]))} us")
    print(f"  {'fan-out p50 / JetStream p50':<40} {f(fo_p50 / js_p50 if fo_p50 and js_p50 else None, 2):>10}"
          f"   (target <= 2); p99 ratio {f(fo_p99 / js_p99 if fo_p99 and js_p99 else None, 2)}")
probs = [x for x in rows if x.get("kind") == "gwlog" and x.get("problems")]
print("\ngateway warn/error lines: " + (", ".join(f"{x['gateway']} {x['problems']}" for x in probs) or "none")
      + " (logs/jetstream-backend/gw-*.problems.txt)")
EOF
