#!/usr/bin/env bash
# The write path in one go: put-record.sh (PutRecord 1 x 100 B) then
# put-records.sh (PutRecords 500 x 100 B), over h2c only unless PROTOS says
# otherwise. Kept for its old command line:
#   bash loadtest/put.sh [build-dir]
#   RUNS=3 DURABILITY=interval:100 C=10 M=10 N1=200000 N500=4000 bash loadtest/put.sh
d=$(dirname "$0")
export PROTOS=${PROTOS:-h2c}
N=${N1:-200000} bash "$d/put-record.sh" "$@" && N=${N500:-4000} bash "$d/put-records.sh" "$@"
