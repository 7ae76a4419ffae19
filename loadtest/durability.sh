#!/usr/bin/env bash
# PutRecords 500 x 100 B over h2c with --durability always, interval:100 and
# never side by side: one fresh gateway per mode, all up at once, each round
# of h2load runs going nghttpd (the same POST, for scale), then every mode in
# turn, so the modes see the same machine noise. With perf available, the
# gateway's fsync+fdatasync calls per second are counted (perf stat on the
# syscall tracepoints; FSYNC=0 to skip).
#   bash loadtest/durability.sh           N=4000 MODES="always interval:100 never"
FSYNC=${FSYNC:-$(command -v perf >/dev/null && echo 1 || echo 0)}
source "$(dirname "$0")/lib.sh"
[ -z "$ENDPOINT" ] || { echo "durability.sh starts its own gateways; unset ENDPOINT" >&2; exit 1; }
lt_init durability
N=${N:-4000} MODES=${MODES:-always interval:100 never}
lt_start_nghttpd
lt_body body.json bench-dur 500 100
for mode in $MODES; do
  lt_start_sluice "$mode" --durability "$mode"
  lt_stream bench-dur 4
  lt_kinesis PutRecords "@$LT_TMP/body.json" >"$LT_TMP/reply.json"
done
lt_static durability "$LT_TMP/reply.json"
for proto in ${DPROTOS:-h2c}; do
  lt_bench "PutRecords 500x100B" "$proto" "$N" "$LT_TMP/body.json" PutRecords 500 100 durability "" nghttpd $MODES
done
lt_finish lt_fsync_json
if [ "$FSYNC" = 1 ]; then
  for k in "${!LT_FSYNC[@]}"; do printf '  fsyncs/s  %-44s %8s\n' "$k" "${LT_FSYNC[$k]}"; done | sort | tee -a "$OUT/durability.txt"
fi
