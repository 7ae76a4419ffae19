#!/usr/bin/env bash
# PutRecords, 500 records of 100 bytes per request (500 distinct partition
# keys), over h2c, h2+TLS and HTTP/1.1; baseline nghttpd as in put-record.sh.
#   bash loadtest/put-records.sh                N=4000 requests per run
#   DURABILITY=always C=4 M=4 bash loadtest/put-records.sh
source "$(dirname "$0")/lib.sh"
lt_init put-records
lt_put_scenario "PutRecords 500x100B" 500 100 "${N:-4000}"
