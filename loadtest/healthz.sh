#!/usr/bin/env bash
# h2load GET /healthz on a fresh gateway over h2c, h2+TLS and HTTP/1.1, and
# the same settings against nghttpd serving the same bytes.
#   bash loadtest/healthz.sh [build-dir]             N=200000 C=50 M=10
#   RUNS=5 N=200000 C=50 M=10 PROTOS=h2c bash loadtest/healthz.sh
C=${C:-50}
source "$(dirname "$0")/lib.sh"
lt_init healthz
N=${N:-200000}
lt_start_sluice sluice
lt_start_nghttpd
curl -s "http://$LT_HOST/healthz" >"$LT_TMP/healthz"
lt_static healthz "$LT_TMP/healthz"
for proto in $PROTOS; do
  lt_bench "GET /healthz" "$proto" "$N" "" "" 1 0 healthz healthz nghttpd sluice
done
lt_finish
