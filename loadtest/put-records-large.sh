#!/usr/bin/env bash
# PutRecords, 5 records of 100 KiB per request, over h2c, h2+TLS and
# HTTP/1.1; baseline nghttpd as in put-record.sh.
#   bash loadtest/put-records-large.sh          N=2000 requests per run
source "$(dirname "$0")/lib.sh"
lt_init put-records-large
lt_put_scenario "PutRecords 5x100KiB" 5 102400 "${N:-2000}"
