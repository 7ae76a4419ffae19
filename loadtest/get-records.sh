#!/usr/bin/env bash
# GetRecords from TRIM_HORIZON: a one-shard stream is prefilled with PREFILL
# records of 100 bytes (PutRecords of 500, random partition keys), then each
# h2load run POSTs GetRecords with a fresh TRIM_HORIZON ShardIterator (one per
# run; iterators are reusable for 5 minutes) and Limit LIMIT, so every request
# reads the same first LIMIT records. Over h2c, h2+TLS and HTTP/1.1; nghttpd
# answers the same POST with the bytes of one real GetRecords reply.
#   bash loadtest/get-records.sh        N=2000 LIMIT=1000 PREFILL=5000
source "$(dirname "$0")/lib.sh"
lt_init get-records
N=${N:-2000} LIMIT=${LIMIT:-1000} PREFILL=${PREFILL:-5000}
lt_start_sluice sluice --durability "${DURABILITY:-interval:100}"
lt_start_nghttpd
stream=bench-get-$$
lt_stream "$stream" 1
for i in $(seq $(( (PREFILL + 499) / 500 ))); do
  lt_body prefill.json "$stream" 500 100
  lt_kinesis PutRecords "@$LT_TMP/prefill.json" | grep -q '"FailedRecordCount":0' || lt_die "prefill failed"
done
for proto in $PROTOS; do
  it=$(lt_kinesis GetShardIterator "{\"StreamName\":\"$stream\",\"ShardId\":\"shardId-000000000000\",\"ShardIteratorType\":\"TRIM_HORIZON\"}" |
    sed -n 's/.*"ShardIterator":"\([^"]*\)".*/\1/p')
  [ -n "$it" ] || lt_die "GetShardIterator failed"
  printf '{"ShardIterator":"%s","Limit":%s}' "$it" "$LIMIT" >"$LT_TMP/get.$proto.json"
  lt_kinesis GetRecords "@$LT_TMP/get.$proto.json" >"$LT_TMP/reply.json"
  per=$(grep -o '"SequenceNumber"' "$LT_TMP/reply.json" | wc -l)
  [ "$per" -gt 0 ] || lt_die "GetRecords returned no records: $(head -c 300 "$LT_TMP/reply.json")"
  lt_static get-records "$LT_TMP/reply.json"
  lt_bench "GetRecords ${per}x100B" "$proto" "$N" "$LT_TMP/get.$proto.json" GetRecords "$per" 100 get-records "" nghttpd sluice
done
lt_finish
