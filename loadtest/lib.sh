# Shared helpers for the h2load scenarios in loadtest/. Sourced, not run.
#
# A scenario script does, in order:
#   source lib.sh; lt_init NAME
#   lt_start_sluice NAME [gateway flags]  (skipped when ENDPOINT is set)
#   lt_start_nghttpd                  (skipped when BASELINE=0)
#   lt_stream NAME SHARDS; generate bodies with lt_py ...
#   lt_bench ...  (the protocols, the gateway and nghttpd, runs interleaved)
#   lt_finish     (table, JSON lines, plots)
#
# Settings (environment):
#   BUILD     build directory holding gateway/sluice (or the script's first
#             argument)                                          (default build/)
#   ENDPOINT  host:port of a running gateway; none is started (default unset)
#   RUNS      h2load runs per figure; medians are reported      (default 3)
#   C, M      h2load -c (connections) and -m (streams per connection; with
#             --h1, requests pipelined per connection)           (default 10, 10)
#   PROTOS    protocols to run: h2c h2 h1                        (default all)
#   BASELINE  1: the same h2load settings against nghttpd        (default 1)
#   TIMEOUT   seconds allowed per h2load run                     (default 120)
#   OUT       output directory (JSON, tables, PNGs, logs)        (default loadtest/out)
#   PERF      1: one extra, uncounted run per gateway figure under
#             perf record -g; top symbols go to OUT/NAME.perf.txt (default 0;
#             PERF_KEEP=1 also keeps each recording in OUT)
#   SERVER_CPUS, CLIENT_CPUS  taskset CPU lists for the gateway and for
#             h2load (e.g. 0 and 1): keeps the client's work (its TLS,
#             say) off the gateway's core                  (default unset)
#
# Everything binds 127.0.0.1; every process started here is stopped on exit.

set -euo pipefail
LT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LT_ROOT=$(dirname "$LT_DIR")
BUILD=${BUILD:-${1:-$LT_ROOT/build}}
ENDPOINT=${ENDPOINT:-}
RUNS=${RUNS:-3} C=${C:-10} M=${M:-10} TIMEOUT=${TIMEOUT:-120}
PROTOS=${PROTOS:-h2c h2 h1} BASELINE=${BASELINE:-1} PERF=${PERF:-0}
OUT=${OUT:-$LT_DIR/out}
LT_TMP="" LT_PIDS=() LT_PID="" LT_HOST="" LT_NPORT="" LT_NTLSPORT="" LT_ROWS=()

lt_die() { echo "$LT_NAME: $*" >&2; exit 1; }

lt_cleanup() {
  local p
  for p in "${LT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${LT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$LT_TMP" ] && rm -rf "$LT_TMP"
}

# lt_init NAME: checks tools, makes the scratch and output directories, a
# self-signed certificate, and installs the exit trap.
lt_init() {
  LT_NAME=$1
  local t
  for t in h2load curl python3 openssl timeout; do
    command -v "$t" >/dev/null || lt_die "needs $t (apt-get install nghttp2-client curl python3 openssl)"
  done
  [ "$BASELINE" = 0 ] || command -v nghttpd >/dev/null || lt_die "needs nghttpd (apt-get install nghttp2-server) or BASELINE=0"
  [ "$PERF" = 0 ] || command -v perf >/dev/null || lt_die "PERF=1 needs perf (apt-get install linux-perf)"
  mkdir -p "$OUT"
  # one scenario at a time per OUT: a second one waits rather than clobbering
  # the first's files and sharing its CPUs
  exec 9>"$OUT/.lock"
  if ! flock -n 9; then
    echo "$LT_NAME: waiting for another scenario writing to $OUT" >&2
    flock -w 900 9 || lt_die "$OUT stayed locked for 15 minutes"
  fi
  LT_TMP=$(mktemp -d /tmp/sluice-lt.XXXXXX)
  trap lt_cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$OUT/logs/$LT_NAME"
  rm -f "$OUT/$LT_NAME.json" "$OUT/$LT_NAME.txt" "$OUT/$LT_NAME.perf.txt" "$OUT/logs/$LT_NAME"/*.log
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$LT_TMP/key.pem" -out "$LT_TMP/cert.pem" \
    -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
}

lt_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# lt_start_sluice NAME [flags...]: a gateway on 127.0.0.1:0 with a fresh data
# directory and TLS on the same port, known to lt_bench as target NAME; sets
# LT_HOST (host:port, used by lt_kinesis) and LT_PID. With ENDPOINT set, uses
# it instead and starts nothing.
declare -A LT_HOSTS=() LT_GWPID=()
lt_start_sluice() {
  local name=$1; shift
  if [ -n "$ENDPOINT" ]; then LT_HOST=$ENDPOINT LT_PID="" LT_HOSTS[$name]=$ENDPOINT; return; fi
  local bin=$BUILD/gateway/sluice
  [ -x "$bin" ] || lt_die "build first: $bin not found (set BUILD)"
  local dir log port=""
  dir=$(mktemp -d "$LT_TMP/data.XXXX"); log=$dir.log
  local pin=()
  [ -n "${SERVER_CPUS:-}" ] && pin=(taskset -c "$SERVER_CPUS")
  "${pin[@]}" "$bin" --listen 127.0.0.1:0 --data-dir "$dir" --tls-cert "$LT_TMP/cert.pem" \
    --tls-key "$LT_TMP/key.pem" --log-level info "$@" 2>"$log" &
  LT_PID=$!; LT_PIDS+=("$LT_PID")
  for _ in $(seq 200); do
    port=$(sed -n 's/.*"event":"listening".*"port":"\{0,1\}\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && break; sleep 0.05
  done
  [ -n "$port" ] || { cat "$log" >&2; lt_die "sluice did not start"; }
  LT_HOST=127.0.0.1:$port LT_HOSTS[$name]=127.0.0.1:$port LT_GWPID[$name]=$LT_PID
}

# lt_start_nghttpd: nghttpd over h2c and over TLS serving $LT_TMP/www, where
# lt_static puts the canned responses. nghttpd speaks HTTP/2 only, so there is
# no HTTP/1.1 baseline.
lt_start_nghttpd() {
  [ "$BASELINE" = 0 ] && return
  mkdir -p "$LT_TMP/www"
  LT_NPORT=$(lt_free_port)
  nghttpd --no-tls -a 127.0.0.1 -d "$LT_TMP/www" "$LT_NPORT" >/dev/null 2>&1 &
  LT_PIDS+=($!)
  LT_NTLSPORT=$(lt_free_port)
  nghttpd -a 127.0.0.1 -d "$LT_TMP/www" "$LT_NTLSPORT" "$LT_TMP/key.pem" "$LT_TMP/cert.pem" >/dev/null 2>&1 &
  LT_PIDS+=($!)
  for _ in $(seq 100); do
    curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$LT_NPORT/" && return
    sleep 0.05
  done
  lt_die "nghttpd did not start"
}

# lt_static NAME FILE: nghttpd answers /NAME with the bytes of FILE.
lt_static() { [ "$BASELINE" = 0 ] || cp "$2" "$LT_TMP/www/$1"; }

# lt_kinesis OP JSON: one Kinesis-door call over HTTP/1.1; prints the answer.
lt_kinesis() {
  curl -sS --max-time 60 -X POST "http://$LT_HOST/" -H 'Content-Type: application/x-amz-json-1.1' \
    -H "X-Amz-Target: Kinesis_20131202.$1" --data-binary "$2"
}

# lt_stream NAME SHARDS: creates the stream and waits for ACTIVE.
lt_stream() {
  lt_kinesis CreateStream "{\"StreamName\":\"$1\",\"ShardCount\":$2}" >/dev/null
  for _ in $(seq 200); do
    lt_kinesis DescribeStreamSummary "{\"StreamName\":\"$1\"}" | grep -q '"ACTIVE"' && return
    sleep 0.05
  done
  lt_die "stream $1 not ACTIVE"
}

# lt_py ARGS...: python3 with the scenario's scratch directory as cwd.
lt_py() { (cd "$LT_TMP" && python3 "$@"); }

lt_median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# lt_url PROTO sluice|nghttpd PATH [HOST]: the URL h2load is given.
lt_url() {
  case $2:$1 in
    sluice:h2) echo "https://${4:-$LT_HOST}/$3" ;;
    sluice:*) echo "http://${4:-$LT_HOST}/$3" ;;
    nghttpd:h2c) echo "http://127.0.0.1:$LT_NPORT/$3" ;;
    nghttpd:h2) echo "https://127.0.0.1:$LT_NTLSPORT/$3" ;;
    *) echo "" ;;
  esac
}

# lt_h2load LOG N BODY OP URL PROTO: one bounded h2load run; prints its output.
# An empty BODY makes it a GET.
lt_h2load() {
  local log=$1 n=$2 body=$3 op=$4 url=$5 proto=$6 a=()
  [ "$proto" = h1 ] && a+=(--h1)
  [ -n "$body" ] && a+=(-d "$body" -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: Kinesis_20131202.$op")
  local pin=()
  [ -n "${CLIENT_CPUS:-}" ] && pin=(taskset -c "$CLIENT_CPUS")
  timeout "$TIMEOUT" "${pin[@]}" h2load "${a[@]}" -n "$n" -c "$C" -m "$M" --log-file="$log" "$url" 2>&1 || true
}

# lt_bench LABEL PROTOS N BODY OP PER SIZE NGPATH SPATH TARGET...
#   LABEL   figure name, e.g. "PutRecords 500x100B"
#   PROTOS  one or more of h2c | h2 | h1 (space-separated)
#   N       requests per run; BODY file POSTed ("" for a GET); OP the
#           X-Amz-Target operation
#   PER     records per request; SIZE bytes per record (for MB/s)
#   NGPATH  nghttpd's path (the lt_static name); SPATH the gateway's path
#   TARGET  nghttpd, or the NAME of a gateway started with lt_start_sluice
#           (a gateway named other than "sluice" is labelled "LABEL NAME")
# Runs RUNS rounds; a round runs each protocol against each target once, one
# after the other, so that protocols and targets see the same machine noise
# (a ratio such as h2+TLS to h2c is then taken from interleaved runs, not
# from runs minutes apart). Per target and protocol: keeps the median run's
# --log-file for the plots and adds a row (median req/s, p50, p99 across
# runs) for lt_finish. With PERF=1, one more run of each local gateway under
# perf record comes first and is not counted. nghttpd is skipped for
# HTTP/1.1 and with BASELINE=0.
lt_bench() {
  local label=$1 protos=$2 n=$3 body=$4 op=$5 per=$6 size=$7 ngpath=$8 spath=$9
  shift 9
  local t k proto url tag i out rps p50 p99 lab kind keys=()
  declare -A urls=() tags=() lines=() errs=() labs=() kinds=() protoof=()
  for proto in $protos; do
    for t in "$@"; do
      if [ "$t" = nghttpd ]; then
        [ "$BASELINE" = 0 ] && continue
        url=$(lt_url "$proto" nghttpd "$ngpath") lab=$label kind=nghttpd
      else
        url=$(lt_url "$proto" sluice "$spath" "${LT_HOSTS[$t]}") kind=sluice
        lab=$label; [ "$t" = sluice ] || lab="$label $t"
      fi
      [ -n "$url" ] || continue
      k="$t|$proto"
      keys+=("$k"); urls[$k]=$url; labs[$k]=$lab; kinds[$k]=$kind; protoof[$k]=$proto
      tags[$k]=$(echo "$lab-$kind-$proto" | tr -c 'A-Za-z0-9.\n-' '_')
      if [ "$PERF" = 1 ] && [ "$kind" = sluice ] && [ -n "${LT_GWPID[$t]:-}" ]; then
        lt_perf "${tags[$k]}" "$n" "$body" "$op" "$url" "$proto" "$lab ($proto)" "${LT_GWPID[$t]}"
      fi
    done
  done
  for i in $(seq "$RUNS"); do
    for k in "${keys[@]}"; do
      [ -n "${errs[$k]:-}" ] && continue
      t=${k%|*} proto=${protoof[$k]} tag=${tags[$k]}
      [ "${kinds[$k]}" = sluice ] && lt_fsync_start "${LT_GWPID[$t]:-}"
      out=$(lt_h2load "$LT_TMP/$tag.$i.log" "$n" "$body" "$op" "${urls[$k]}" "$proto")
      [ "${kinds[$k]}" = sluice ] && lt_fsync_stop "$tag"
      if ! echo "$out" | grep -q " 0 failed, 0 errored" || ! echo "$out" | grep -q "$n 2xx"; then
        errs[$k]="run $i: $(echo "$out" | grep -E '^(requests|status codes|finished)|rror' | tr '\n' ' ' | tr -d '"\\' | cut -c1-300)"
        echo "$LT_NAME: ${labs[$k]} ${kinds[$k]} $proto failed: $out" >&2
        continue
      fi
      rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
      read -r p50 p99 < <(awk '{print $3}' "$LT_TMP/$tag.$i.log" | sort -n |
        awk '{a[NR]=$1} END {i=int(NR*0.5); j=int(NR*0.99); if (i<1) i=1; if (j<1) j=1; print a[i], a[j]}')
      lines[$k]+="$rps $p50 $p99 $i"$'\n'
      printf '  %-34s %-7s %-4s run %s: %10.0f req/s  p50 %7s us  p99 %7s us\n' \
        "${labs[$k]}" "${kinds[$k]}" "$proto" "$i" "$rps" "$p50" "$p99" >&2
    done
  done
  for k in "${keys[@]}"; do
    tag=${tags[$k]} proto=${protoof[$k]}
    if [ -n "${errs[$k]:-}" ]; then LT_ROWS+=("${labs[$k]}|$proto|${kinds[$k]}|$per|$size|$n|error|${errs[$k]}"); continue; fi
    rps=$(printf '%s' "${lines[$k]}" | awk '{print $1}' | lt_median)
    p50=$(printf '%s' "${lines[$k]}" | awk '{print $2}' | lt_median)
    p99=$(printf '%s' "${lines[$k]}" | awk '{print $3}' | lt_median)
    # the run closest to the median req/s supplies the plotted log
    i=$(printf '%s' "${lines[$k]}" | awk -v m="$rps" '{d=$1-m; if (d<0) d=-d; if (NR==1 || d<b) {b=d; k=$4}} END {print k}')
    cp "$LT_TMP/$tag.$i.log" "$OUT/logs/$LT_NAME/$tag.log"
    LT_ROWS+=("${labs[$k]}|$proto|${kinds[$k]}|$per|$size|$n|$rps $p50 $p99|$tag")
  done
}

# FSYNC=1 (with a local gateway): each gateway run is watched by perf stat on
# the fsync/fdatasync syscall tracepoints; LT_FSYNC[TAG] holds the median
# fsyncs/s of the runs (lt_fsync_json prints it for lt_finish).
FSYNC=${FSYNC:-0}
declare -A LT_FSYNC=() LT_FSYNC_RUNS=()
lt_fsync_start() {
  LT_FSYNC_PID=""
  [ "$FSYNC" = 1 ] && [ -n "${1:-}" ] || return 0
  rm -f "$LT_TMP/fsync.csv"
  perf stat -x, -o "$LT_TMP/fsync.csv" -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync \
    -p "$1" >/dev/null 2>&1 &
  LT_FSYNC_PID=$!; LT_PIDS+=("$LT_FSYNC_PID")
  LT_FSYNC_T0=$(date +%s.%N)
  sleep 0.2
}
lt_fsync_stop() {
  [ -n "${LT_FSYNC_PID:-}" ] || return 0
  kill -INT "$LT_FSYNC_PID" 2>/dev/null || true; wait "$LT_FSYNC_PID" 2>/dev/null || true
  local t1 r
  t1=$(date +%s.%N)
  r=$(awk -F, -v t0="$LT_FSYNC_T0" -v t1="$t1" '/syscalls:/ {n+=$1} END {printf "%.0f", n/(t1-t0)}' "$LT_TMP/fsync.csv" 2>/dev/null)
  LT_FSYNC_RUNS[$1]="${LT_FSYNC_RUNS[$1]:-} $r"
  LT_FSYNC[$1]=$(printf '%s\n' ${LT_FSYNC_RUNS[$1]} | lt_median)
}
lt_fsync_json() { [ -n "${LT_FSYNC[$1]:-}" ] && printf ',"fsyncs_per_s":%s' "${LT_FSYNC[$1]}" || true; }

# lt_perf TAG N BODY OP URL PROTO TITLE PID: one h2load run with perf record -g
# attached to the gateway; appends the top symbols to OUT/NAME.perf.txt: self
# time by symbol and by library, and inclusive time of kernel symbols (a
# Release build has no frame pointers, so user-space call chains are not
# reliable; build with -fno-omit-frame-pointer for those).
lt_perf() {
  local tag=$1 data="$LT_TMP/$1.perf.data" ppid out
  perf record -g -o "$data" -p "$8" >/dev/null 2>&1 &
  ppid=$!; LT_PIDS+=("$ppid")
  sleep 0.3
  out=$(lt_h2load "$LT_TMP/$tag.perf.log" "$2" "$3" "$4" "$5" "$6")
  kill -INT "$ppid" 2>/dev/null || true; wait "$ppid" 2>/dev/null || true
  {
    echo "=== $7: $(echo "$out" | grep '^finished')"
    echo "--- self time by dso and symbol (perf report --no-children), top 30"
    perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
      awk '/^ +[0-9]/ && n++ < 30' || true
    echo "--- self time by dso"
    perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null |
      awk '/^ +[0-9]/ && n++ < 12' || true
    echo "--- inclusive time, kernel symbols, top 15"
    perf report -i "$data" --stdio --children --sort symbol -g none 2>/dev/null |
      awk '/^ +[0-9]/ && /\[k\]/ && n++ < 15' || true
    echo
  } >> "$OUT/$LT_NAME.perf.txt"
  # PERF_KEEP=1 keeps the recording (call graphs) as OUT/NAME.TAG.perf.data
  if [ "${PERF_KEEP:-0}" = 1 ]; then mv "$data" "$OUT/$LT_NAME.$tag.perf.data"; else rm -f "$data"; fi
}

# lt_finish [EXTRA_JSON]: prints the table, writes OUT/NAME.txt and
# OUT/NAME.json (one JSON line per figure) and the plots. EXTRA_JSON, if set,
# is a function called with a row's tag that prints extra ',"key":value' JSON.
lt_finish() {
  local extra=${1:-} row label proto target per size n fig tag rps p50 p99 base ratio x
  declare -A baseline=()
  for row in "${LT_ROWS[@]}"; do
    IFS='|' read -r label proto target per size n fig tag <<<"$row"
    [ "$target" = nghttpd ] && [ "$fig" != error ] && baseline["$label|$proto"]=${fig%% *}
  done
  # a figure labelled "L something" (durability.sh) is compared with baseline "L"
  for row in "${LT_ROWS[@]}"; do
    IFS='|' read -r label proto target per size n fig tag <<<"$row"
    for x in "${!baseline[@]}"; do
      [ -z "${baseline["$label|$proto"]:-}" ] && [ "${x#*|}" = "$proto" ] && [ "${label#"${x%|*} "}" != "$label" ] &&
        baseline["$label|$proto"]=${baseline[$x]}
    done
  done
  {
    printf '%s: h2load -c %s -m %s, median of %s runs, %s cores, %s\n' "$LT_NAME" "$C" "$M" "$RUNS" "$(nproc)" "$(date -u +%FT%TZ)"
    printf '%-34s %-4s %-8s %10s %12s %9s %9s %9s %7s\n' scenario prot target req/s records/s MB/s p50_us p99_us ratio
    for row in "${LT_ROWS[@]}"; do
      IFS='|' read -r label proto target per size n fig tag <<<"$row"
      if [ "$fig" = error ]; then printf '%-34s %-4s %-8s  ERROR %s\n' "$label" "$proto" "$target" "$tag"; continue; fi
      read -r rps p50 p99 <<<"$fig"
      base=${baseline["$label|$proto"]:-}
      awk -v l="$label" -v p="$proto" -v t="$target" -v r="$rps" -v per="$per" -v s="$size" \
        -v a="$p50" -v b="$p99" -v base="$base" 'BEGIN {
          printf "%-34s %-4s %-8s %10.0f %12.0f %9.1f %9.0f %9.0f %7s\n", l, p, t, r, r*per, r*per*s/1e6, a, b,
            base == "" ? "-" : sprintf("%.2f", r / base) }'
    done
  } | tee "$OUT/$LT_NAME.txt"
  for row in "${LT_ROWS[@]}"; do
    IFS='|' read -r label proto target per size n fig tag <<<"$row"
    if [ "$fig" = error ]; then
      printf '{"scenario":"%s","label":"%s","proto":"%s","target":"%s","error":"%s"}\n' \
        "$LT_NAME" "$label" "$proto" "$target" "$tag"
      continue
    fi
    read -r rps p50 p99 <<<"$fig"
    base=${baseline["$label|$proto"]:-}
    x=""; [ -n "$extra" ] && x=$("$extra" "$tag")
    awk -v sc="$LT_NAME" -v l="$label" -v p="$proto" -v t="$target" -v r="$rps" -v per="$per" -v s="$size" \
      -v a="$p50" -v b="$p99" -v base="$base" -v n="$n" -v c="$C" -v m="$M" -v runs="$RUNS" -v x="$x" 'BEGIN {
        printf "{\"scenario\":\"%s\",\"label\":\"%s\",\"proto\":\"%s\",\"target\":\"%s\",\"c\":%d,\"m\":%d,\"n\":%d,\"runs\":%d,", sc, l, p, t, c, m, n, runs
        printf "\"records_per_request\":%d,\"record_bytes\":%d,\"req_per_s\":%.1f,\"records_per_s\":%.0f,\"mb_per_s\":%.2f,", per, s, r, r*per, r*per*s/1e6
        printf "\"p50_us\":%d,\"p99_us\":%d,\"ratio_to_nghttpd\":%s%s}\n", a, b, base == "" ? "null" : sprintf("%.3f", r / base), x }'
  done | tee "$OUT/$LT_NAME.json"
  lt_plot
}

# lt_plot: OUT/NAME-latency-cdf.png (every figure's median-run latencies) and
# OUT/NAME-throughput.png (records/s per 100 ms of that run) with gnuplot.
lt_plot() {
  command -v gnuplot >/dev/null || { echo "$LT_NAME: no gnuplot (apt-get install gnuplot-nox); no plots" >&2; return 0; }
  local row label proto target per size n fig tag cdf="" tp="" d=$LT_TMP/plot
  mkdir -p "$d"
  for row in "${LT_ROWS[@]}"; do
    IFS='|' read -r label proto target per size n fig tag <<<"$row"
    [ "$fig" = error ] && continue
    local log=$OUT/logs/$LT_NAME/$tag.log
    # CDF: at most ~2000 points, always the last (max) one
    awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {s=int(NR/2000); if (s<1) s=1;
      for (i=s; i<=NR; i+=s) print a[i], i/NR; if ((NR%s)!=0) print a[NR], 1}' >"$d/$tag.cdf"
    # throughput: completions per 100 ms bucket, as records/s, time from the first
    # request; the last, partial bucket is left out
    awk -v per="$per" 'NR==1 {t0=$1} {b=int(($1+$3-t0)/100000); c[b]++; if (b>mx) mx=b}
      END {if (mx>0) mx--; for (i=0; i<=mx; i++) printf "%.1f %.0f\n", i/10, c[i]*10*per}' "$log" >"$d/$tag.tp"
    local title="$label $proto $target" ttitle
    ttitle=$title; [ "$target" = nghttpd ] && [ "$per" != 1 ] && ttitle="$title (req/s x $per)"
    cdf+="${cdf:+, }'$d/$tag.cdf' using (\$1/1000.0):2 with lines lw 2 title '$title'"
    tp+="${tp:+, }'$d/$tag.tp' using 1:2 with linespoints lw 2 pt 7 ps 0.5 title '$ttitle'"
  done
  [ -n "$cdf" ] || return 0
  gnuplot <<EOF
set terminal pngcairo size 1100,650 font 'sans,10'
set key bottom right
set grid
set output '$OUT/$LT_NAME-latency-cdf.png'
set title "$LT_NAME: request latency CDF (median run; h2load -c $C -m $M)"
set logscale x
set format x '%g'
set xlabel 'latency (ms, log scale)'
set ylabel 'fraction of requests'
set yrange [0:1]
set ytics 0.1
plot $cdf
set output '$OUT/$LT_NAME-throughput.png'
set title "$LT_NAME: throughput over time (median run, 100 ms buckets)"
unset logscale x
set format x '%g'
set key outside top center horizontal
set xlabel 'seconds since the first request'
set ylabel 'records/s'
set format y '%.1s%c'
set ytics auto
set yrange [0:*]
plot $tp
EOF
  echo "$LT_NAME: plots $OUT/$LT_NAME-latency-cdf.png $OUT/$LT_NAME-throughput.png" >&2
}

# lt_body FILE STREAM COUNT SIZE: a PutRecords body (COUNT records of SIZE
# random bytes, partition keys random per record), or with COUNT=0 a PutRecord
# body with one record and a random key. A fresh body per call.
lt_body() {
  lt_py - "$@" <<'PY'
import base64, json, os, sys, uuid
f, stream, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rec = lambda: {"Data": base64.b64encode(os.urandom(size)).decode(), "PartitionKey": "pk-" + uuid.uuid4().hex}
if count == 0:
    body = dict(StreamName=stream, **rec())
else:
    body = {"StreamName": stream, "Records": [rec() for _ in range(count)]}
with open(f, "w") as o:
    json.dump(body, o, separators=(",", ":"))
PY
}

# lt_put_scenario LABEL COUNT SIZE N: the write-path scenario shared by
# put-record.sh, put-records.sh and put-records-large.sh. Over each protocol
# in PROTOS, runs interleaved: N requests per run against the gateway
# (durability DURABILITY, default interval:100, stream of 4 shards) and, for
# scale, against nghttpd answering the same POST with the gateway's own reply
# bytes.
lt_put_scenario() {
  local label=$1 count=$2 size=$3 n=$4 op=PutRecords per=$2
  [ "$count" = 0 ] && op=PutRecord per=1
  DURABILITY=${DURABILITY:-interval:100}
  lt_start_sluice sluice --durability "$DURABILITY"
  lt_start_nghttpd
  lt_stream "bench-$LT_NAME-$$" 4
  lt_body body.json "bench-$LT_NAME-$$" "$count" "$size"
  lt_kinesis "$op" "@$LT_TMP/body.json" >"$LT_TMP/reply.json"
  grep -q '"SequenceNumber"' "$LT_TMP/reply.json" || lt_die "$op failed: $(head -c 300 "$LT_TMP/reply.json")"
  lt_static "$LT_NAME" "$LT_TMP/reply.json"
  # all protocols in one lt_bench: their runs interleave
  lt_bench "$label" "$PROTOS" "$n" "$LT_TMP/body.json" "$op" "$per" "$size" "$LT_NAME" "" nghttpd sluice
  lt_finish lt_durability_json
}
lt_durability_json() { [ -n "$ENDPOINT" ] && printf ',"durability":"endpoint"' || printf ',"durability":"%s"' "$DURABILITY"; }
