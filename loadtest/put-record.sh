#!/usr/bin/env bash
# PutRecord, one 100-byte record per request, over h2c, h2+TLS and HTTP/1.1,
# against a fresh gateway (durability DURABILITY, default interval:100) and,
# for scale, nghttpd answering the same POST with the same reply bytes.
#   bash loadtest/put-record.sh                 N=200000 requests per run
#   RUNS=5 C=10 M=10 N=400000 PROTOS=h2c BUILD=/tmp/rel bash loadtest/put-record.sh
# Settings shared by every scenario: see loadtest/lib.sh.
source "$(dirname "$0")/lib.sh"
lt_init put-record
lt_put_scenario "PutRecord 1x100B" 0 100 "${N:-200000}"
