#!/usr/bin/env bash
# Smoke test with Debian's AWS CLI (package awscli, HTTP/1.1) against the real
# sluice binary: create-stream, wait for ACTIVE, put-record, put-records,
# list-shards, get-shard-iterator, get-records, and one error; then resharding
# (split-shard, merge-shards, update-shard-count, list-shards --shard-filter,
# get-records to the end of a closed shard). The gateway runs with --auth
# sigv4: the CLI's signatures are verified, and a wrong secret is refused.
#   SLUICE_BIN=/path/to/sluice bash tests/cli/awscli_smoke.sh
# AWS_CLI overrides the aws binary (default /usr/bin/aws, Debian's, then PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vectors=${SLUICE_VECTORS_DIR:-$here/../vectors}
bin=${SLUICE_BIN:?SLUICE_BIN must point to the sluice binary}
aws=${AWS_CLI:-}
if [ -z "$aws" ]; then
  if [ -x /usr/bin/aws ]; then aws=/usr/bin/aws; else aws=$(command -v aws || true); fi
fi
if [ -z "$aws" ]; then
  echo "FAIL: no aws CLI; install Debian's awscli (apt-get install awscli, see .ci/deps)"
  exit 1
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A clean CLI environment: dummy credentials, no user config, no pager, no IMDS.
export HOME="$tmp/home" AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE \
  AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY AWS_DEFAULT_REGION=us-east-1 \
  AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$tmp/home/config" \
  AWS_SHARED_CREDENTIALS_FILE="$tmp/home/credentials" AWS_MAX_ATTEMPTS=1
mkdir -p "$HOME"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true

printf '# the CLI environment key above\n%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$tmp/credentials"
# --stream-delay: each reshard leaves the stream UPDATING long enough for the
# CLI (0.5 to 2 s a call) to see it and to be refused another reshard.
delay_s=6
"$bin" --listen 127.0.0.1:0 --data-dir "$tmp/data" --auth sigv4 --credentials "$tmp/credentials" \
  --stream-delay "${delay_s}s" 2>"$tmp/sluice.log" &
pid=$!
port=""
for _ in $(seq 1 200); do   # bounded: 10 s
  port=$(python3 - "$tmp/sluice.log" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("event") == "listening":
        print(ev["port"]); break
PY
)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: sluice exited before listening"; cat "$tmp/sluice.log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: sluice did not log listening"; cat "$tmp/sluice.log"; exit 1; }
echo "# sluice on port $port, $("$aws" --version 2>&1)"

passed=0; failed=0
kin() { "$aws" --endpoint-url "http://127.0.0.1:$port" --no-cli-pager --output json kinesis "$@"; }
# check NAME PYTHON-EXPR [ARG...]: evaluates EXPR (it may span lines) with `r` =
# the JSON in $out, `v` = hashkeys.json and the ARGs in sys.argv[4:].
check() {
  local name=$1 expr=$2 input=$out
  shift 2
  if python3 -c '
import json, sys
r = json.loads(sys.argv[1]) if sys.argv[1].strip() else None
v = json.load(open(sys.argv[3]))
try:
    ok = eval("(" + sys.argv[2] + "\n)")
except Exception as e:
    print("#   error: %r" % (e,))
    ok = False
sys.exit(0 if ok else 1)' "$input" "$expr" "$vectors/hashkeys.json" "$@"; then
    passed=$((passed + 1)); echo "ok - $name"
  else
    failed=$((failed + 1)); echo "not ok - $name"; echo "#   expected: $expr"; echo "#   got: ${input:0:2000}"
  fi
}
# field PYTHON-EXPR: prints EXPR with `r` = the JSON in $out.
field() { python3 -c 'import json, sys; r = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$out"; }
# run NAME CMD...: the command must succeed; its stdout is left in $out.
run() {
  local name=$1 rc=0; shift
  out=$("$@" 2>"$tmp/err") || rc=$?
  [ "$rc" -eq 0 ] && return 0
  failed=$((failed + 1)); echo "not ok - $name: exit $rc"; sed 's/^/#   /' "$tmp/err"; out=""
  return 1
}

s=cli-smoke
if run create-stream kin create-stream --stream-name "$s" --shard-count 2; then
  passed=$((passed + 1)); echo "ok - create-stream"
fi

status=""
deadline=$((SECONDS + 15 + delay_s))
while [ $SECONDS -lt $deadline ]; do
  if out=$(kin describe-stream-summary --stream-name "$s" 2>"$tmp/err"); then
    status=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["StreamDescriptionSummary"]["StreamStatus"])' <<<"$out")
    [ "$status" = ACTIVE ] && break
  fi
  sleep 0.05
done
check "describe-stream-summary: ACTIVE, 2 open shards, ARN" \
  'r["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" and r["StreamDescriptionSummary"]["OpenShardCount"] == 2 and r["StreamDescriptionSummary"]["StreamARN"].endswith(":stream/cli-smoke")'

# "a" routes to shard 0 of 2 (tests/vectors/hashkeys.json)
run put-record kin put-record --stream-name "$s" --partition-key a --data 'hello from the cli' \
  --cli-binary-format raw-in-base64-out && check "put-record: ShardId and SequenceNumber" \
  'r["ShardId"] == "shardId-000000000000" and r["SequenceNumber"].isdigit()'
seq1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["SequenceNumber"])' <<<"$out" 2>/dev/null || true)

records='[{"Data":"one","PartitionKey":"partitionKey-1"},{"Data":"two","PartitionKey":"key-0"},{"Data":"three","PartitionKey":"key-8"},{"Data":"four","PartitionKey":"x","ExplicitHashKey":"340282366920938463463374607431768211455"}]'
run put-records kin put-records --stream-name "$s" --records "$records" --cli-binary-format raw-in-base64-out \
  && check "put-records: 4 results, routed as the vectors say" \
  'r.get("FailedRecordCount", 0) == 0 and [e["ShardId"] for e in r["Records"]] == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000001", "shardId-000000000001"] and all(e["SequenceNumber"].isdigit() for e in r["Records"])'
seq_one=$(field 'r["Records"][0]["SequenceNumber"]' 2>/dev/null || true)   # the last record of shard 0

run list-shards kin list-shards --stream-name "$s" && check "list-shards: the even split of hashkeys.json" \
  '[{"ShardId": x["ShardId"], **x["HashKeyRange"]} for x in r["Shards"]] == v["ranges"]["2"] and all("EndingSequenceNumber" not in x["SequenceNumberRange"] for x in r["Shards"])'

read_shard() {  # read_shard SHARD-ID: prints the get-records JSON
  local it
  out=""
  run "get-shard-iterator $1" kin get-shard-iterator --stream-name "$s" --shard-id "$1" --shard-iterator-type TRIM_HORIZON || return 0
  it=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ShardIterator"])' <<<"$out")
  passed=$((passed + 1)); echo "ok - get-shard-iterator $1"
  run "get-records $1" kin get-records --shard-iterator "$it" || return 0
}
read_shard shardId-000000000000
check "get-records shard 0: data (base64) and order" \
  '[ (__import__("base64").b64decode(x["Data"]).decode(), x["PartitionKey"]) for x in r["Records"]] == [("hello from the cli", "a"), ("one", "partitionKey-1")] and r["NextShardIterator"] and r["MillisBehindLatest"] == 0'
check "get-records shard 0: the put-record sequence number" "r['Records'][0]['SequenceNumber'] == '$seq1'"
read_shard shardId-000000000001
check "get-records shard 1: data and order" \
  '[__import__("base64").b64decode(x["Data"]).decode() for x in r["Records"]] == ["two", "three", "four"]'

# ---- Resharding (docs/protocol.md §1.4) -------------------------------------
sid() { printf 'shardId-%012d' "$1"; }
h126=85070591730234615865843651857942052864     # 2^126: the middle of shard 0
h127m1=170141183460469231731687303715884105727  # 2^127 - 1: the end of shard 0
ms() { date +%s%3N; }
# while_updating NAME T0 EXPECTED-OUTCOME: the outcome of a call made after a
# reshard that started at or after T0 (ms). Within --stream-delay of T0 the
# stream is surely still UPDATING, so a miss is a failure; later (a slow CLI)
# it is only a skip.
while_updating() {
  local name=$1 t0=$2 got=$3
  if [ "$got" = yes ]; then passed=$((passed + 1)); echo "ok - $name"
  elif [ $(($(ms) - t0)) -ge $((delay_s * 1000)) ]; then
    passed=$((passed + 1)); echo "ok - $name # SKIP the CLI took longer than --stream-delay"
  else
    failed=$((failed + 1)); echo "not ok - $name"; sed 's/^/#   /' "$tmp/err"; echo "#   got: ${out:0:2000}"
  fi
}
# refused_in_use NAME T0 CMD...: a reshard while UPDATING is refused with
# ResourceInUseException. CMD is chosen invalid on an ACTIVE stream too
# (InvalidArgumentException), so a late probe changes nothing.
refused_in_use() {
  local name=$1 t0=$2 got=no; shift 2
  out=""
  if ! "$@" >/dev/null 2>"$tmp/err" && grep -q ResourceInUseException "$tmp/err"; then got=yes; fi
  while_updating "$name: ResourceInUseException" "$t0" "$got"
}
# updating NAME T0: describe-stream-summary says UPDATING.
updating() {
  local got=no
  if out=$(kin describe-stream-summary --stream-name "$s" 2>"$tmp/err") \
    && [ "$(field 'r["StreamDescriptionSummary"]["StreamStatus"]')" = UPDATING ]; then got=yes; fi
  while_updating "$1: the stream is UPDATING" "$2" "$got"
}
# wait_active WHAT: polls describe-stream-summary until ACTIVE (bounded); the
# last summary is left in $out.
wait_active() {
  local st="" deadline=$((SECONDS + 15 + delay_s))
  out=""
  while [ $SECONDS -lt $deadline ]; do
    if out=$(kin describe-stream-summary --stream-name "$s" 2>"$tmp/err"); then
      st=$(field 'r["StreamDescriptionSummary"]["StreamStatus"]')
      [ "$st" = ACTIVE ] && break
    else
      out=""
    fi
    sleep 0.2
  done
  check "$1: ACTIVE again" 'r["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"'
}
# read_to_end SHARD-ID: get-records from TRIM_HORIZON until a reply without
# NextShardIterator (at most 10 calls); $out is then
# {"records": [(data, key, seq)...], "pages": [every reply]}.
read_to_end() {
  local it n=0 pages=$tmp/pages.json
  echo '[]' >"$pages"
  run "get-shard-iterator $1" kin get-shard-iterator --stream-name "$s" --shard-id "$1" --shard-iterator-type TRIM_HORIZON || return 0
  it=$(field 'r["ShardIterator"]')
  while [ -n "$it" ] && [ $n -lt 10 ]; do
    n=$((n + 1))
    run "get-records $1 (call $n)" kin get-records --shard-iterator "$it" || break
    python3 -c 'import json, sys; p = json.load(open(sys.argv[1])); p.append(json.loads(sys.argv[2])); json.dump(p, open(sys.argv[1], "w"))' "$pages" "$out"
    it=$(field 'r.get("NextShardIterator") or ""')
  done
  out=$(python3 -c '
import base64, json, sys
p = json.load(open(sys.argv[1]))
recs = [(base64.b64decode(x["Data"]).decode(), x["PartitionKey"], x["SequenceNumber"]) for g in p for x in g["Records"]]
print(json.dumps({"records": recs, "pages": p}))' "$pages")
}

# split-shard: shard 0 [0, 2^127-1] at 2^126 gives shards 2 [0, 2^126-1] and 3 [2^126, 2^127-1].
t0=$(ms)
run split-shard kin split-shard --stream-name "$s" --shard-to-split "$(sid 0)" --new-starting-hash-key "$h126" \
  && { passed=$((passed + 1)); echo "ok - split-shard $(sid 0) at 2^126"; }
# (key 0 is below shard 1's range: InvalidArgumentException once ACTIVE)
refused_in_use "split-shard while UPDATING" "$t0" \
  kin split-shard --stream-name "$s" --shard-to-split "$(sid 1)" --new-starting-hash-key 0
updating split-shard "$t0"
# Writes go on while UPDATING, into the children: MD5("a") = 0x0cc1... < 2^126
# routes to shard 2, the explicit hash key 2^126 to shard 3 (its first key).
run "put-record after split" kin put-record --stream-name "$s" --partition-key a --data 'after the split' \
  --cli-binary-format raw-in-base64-out \
  && check "put-record after split: lands in child $(sid 2), after the parent's sequence numbers" \
  "r['ShardId'] == '$(sid 2)' and int(r['SequenceNumber']) > int('$seq_one')"
run "put-record explicit hash key after split" kin put-record --stream-name "$s" --partition-key z \
  --explicit-hash-key "$h126" --data 'right child' --cli-binary-format raw-in-base64-out \
  && check "put-record ExplicitHashKey 2^126: lands in child $(sid 3)" "r['ShardId'] == '$(sid 3)'"
wait_active split-shard
check "split-shard: 3 open shards" 'r["StreamDescriptionSummary"]["OpenShardCount"] == 3'

run "list-shards after split" kin list-shards --stream-name "$s" --shard-filter Type=FROM_TRIM_HORIZON \
  && check "list-shards FROM_TRIM_HORIZON after split: 0 closed at its last record, 1 open, children 2 and 3" "
[x['ShardId'] for x in r['Shards']] == ['$(sid 0)', '$(sid 1)', '$(sid 2)', '$(sid 3)']
and r['Shards'][0]['SequenceNumberRange'].get('EndingSequenceNumber') == '$seq_one'
and all('EndingSequenceNumber' not in x['SequenceNumberRange'] for x in r['Shards'][1:])
and [x.get('ParentShardId') for x in r['Shards']] == [None, None, '$(sid 0)', '$(sid 0)']
and all('AdjacentParentShardId' not in x for x in r['Shards'])
and r['Shards'][2]['HashKeyRange'] == {'StartingHashKey': '0', 'EndingHashKey': str($h126 - 1)}
and r['Shards'][3]['HashKeyRange'] == {'StartingHashKey': '$h126', 'EndingHashKey': '$h127m1'}"

read_to_end "$(sid 0)"
check "get-records on closed $(sid 0) to the end: its 2 records, then ChildShards 2 and 3 and no NextShardIterator" "
[x[:2] for x in r['records']] == [['hello from the cli', 'a'], ['one', 'partitionKey-1']]
and 'NextShardIterator' not in r['pages'][-1]
and all(p.get('NextShardIterator') and not p.get('ChildShards') for p in r['pages'][:-1])
and sorted(r['pages'][-1]['ChildShards'], key=lambda c: c['ShardId']) == [
  {'ShardId': '$(sid 2)', 'ParentShards': ['$(sid 0)'], 'HashKeyRange': {'StartingHashKey': '0', 'EndingHashKey': str($h126 - 1)}},
  {'ShardId': '$(sid 3)', 'ParentShards': ['$(sid 0)'], 'HashKeyRange': {'StartingHashKey': '$h126', 'EndingHashKey': '$h127m1'}}]"
read_shard "$(sid 2)"
check "get-records child $(sid 2): the record put after the split" \
  '[__import__("base64").b64decode(x["Data"]).decode() for x in r["Records"]] == ["after the split"] and r.get("NextShardIterator")'
read_shard "$(sid 3)"
check "get-records child $(sid 3): the explicit-hash-key record" \
  '[__import__("base64").b64decode(x["Data"]).decode() for x in r["Records"]] == ["right child"]'

# merge-shards: 2 and 3 back into shard 4 [0, 2^127-1].
t0=$(ms)
run merge-shards kin merge-shards --stream-name "$s" --shard-to-merge "$(sid 2)" --adjacent-shard-to-merge "$(sid 3)" \
  && { passed=$((passed + 1)); echo "ok - merge-shards $(sid 2) + $(sid 3)"; }
# (shard 0 is closed: InvalidArgumentException once ACTIVE)
refused_in_use "merge-shards while UPDATING" "$t0" \
  kin merge-shards --stream-name "$s" --shard-to-merge "$(sid 0)" --adjacent-shard-to-merge "$(sid 1)"
updating merge-shards "$t0"
wait_active merge-shards
check "merge-shards: 2 open shards" 'r["StreamDescriptionSummary"]["OpenShardCount"] == 2'
run "list-shards AT_LATEST after merge" kin list-shards --stream-name "$s" --shard-filter Type=AT_LATEST \
  && check "list-shards AT_LATEST after merge: only open 1 and 4; 4 has both parents and their union" "
sorted(x['ShardId'] for x in r['Shards']) == ['$(sid 1)', '$(sid 4)']
and all('EndingSequenceNumber' not in x['SequenceNumberRange'] for x in r['Shards'])
and [(x.get('ParentShardId'), x.get('AdjacentParentShardId'), x['HashKeyRange']) for x in r['Shards'] if x['ShardId'] == '$(sid 4)']
    == [('$(sid 2)', '$(sid 3)', {'StartingHashKey': '0', 'EndingHashKey': '$h127m1'})]"
read_to_end "$(sid 2)"
check "get-records on closed $(sid 2) to the end: ChildShards = merged $(sid 4), no NextShardIterator" "
[x[0] for x in r['records']] == ['after the split'] and 'NextShardIterator' not in r['pages'][-1]
and [(c['ShardId'], sorted(c['ParentShards']), c['HashKeyRange']) for c in r['pages'][-1]['ChildShards']]
    == [('$(sid 4)', ['$(sid 2)', '$(sid 3)'], {'StartingHashKey': '0', 'EndingHashKey': '$h127m1'})]"

# update-shard-count: 2 -> 4 open shards, the even split of hashkeys.json.
t0=$(ms)
run update-shard-count kin update-shard-count --stream-name "$s" --target-shard-count 4 --scaling-type UNIFORM_SCALING \
  && check "update-shard-count: CurrentShardCount 2, TargetShardCount 4" \
  'r["StreamName"] == "cli-smoke" and r["CurrentShardCount"] == 2 and r["TargetShardCount"] == 4 and r["StreamARN"].endswith(":stream/cli-smoke")'
# (100 is more than double: InvalidArgumentException once ACTIVE)
refused_in_use "update-shard-count while UPDATING" "$t0" \
  kin update-shard-count --stream-name "$s" --target-shard-count 100 --scaling-type UNIFORM_SCALING
updating update-shard-count "$t0"
wait_active update-shard-count
check "update-shard-count: 4 open shards" 'r["StreamDescriptionSummary"]["OpenShardCount"] == 4'
run "list-shards AT_LATEST after update-shard-count" kin list-shards --stream-name "$s" --shard-filter Type=AT_LATEST \
  && check "list-shards AT_LATEST after update-shard-count: 4 new open shards, uniform ranges, each with a parent" "
sorted((x['HashKeyRange'] for x in r['Shards']), key=lambda h: int(h['StartingHashKey'])) == [{'StartingHashKey': e['StartingHashKey'], 'EndingHashKey': e['EndingHashKey']} for e in v['ranges']['4']]
and all(x['ShardId'] > '$(sid 4)' and x.get('ParentShardId') for x in r['Shards'])
and all('EndingSequenceNumber' not in x['SequenceNumberRange'] for x in r['Shards'])"
latest=$out
run "list-shards FROM_TRIM_HORIZON after update-shard-count" kin list-shards --stream-name "$s" --shard-filter Type=FROM_TRIM_HORIZON \
  && check "list-shards FROM_TRIM_HORIZON: all shards; open exactly the AT_LATEST ones; 0..4 closed" "
sorted(x['ShardId'] for x in r['Shards'] if 'EndingSequenceNumber' not in x['SequenceNumberRange'])
    == sorted(x['ShardId'] for x in json.loads(sys.argv[4])['Shards'])
and all('EndingSequenceNumber' in x['SequenceNumberRange'] for x in r['Shards'] if x['ShardId'] <= '$(sid 4)')
and [x['ShardId'] for x in r['Shards']][:5] == ['shardId-%012d' % i for i in range(5)]" "$latest"
all=$out
run "list-shards AFTER_SHARD_ID" kin list-shards --stream-name "$s" --shard-filter "Type=AFTER_SHARD_ID,ShardId=$(sid 4)" \
  && check "list-shards AFTER_SHARD_ID $(sid 4): exactly the shards after it" "
[x['ShardId'] for x in r['Shards']] == [x['ShardId'] for x in json.loads(sys.argv[4])['Shards'] if x['ShardId'] > '$(sid 4)']
and len(r['Shards']) >= 4" "$all"

# An error: the CLI exits 254 and names the exception.
if kin describe-stream-summary --stream-name no-such-stream >/dev/null 2>"$tmp/err"; then
  failed=$((failed + 1)); echo "not ok - missing stream: describe-stream-summary succeeded"
elif grep -q "ResourceNotFoundException" "$tmp/err"; then
  passed=$((passed + 1)); echo "ok - missing stream: ResourceNotFoundException"
else
  failed=$((failed + 1)); echo "not ok - missing stream"; sed 's/^/#   /' "$tmp/err"
fi

# A wrong secret: the signature does not verify, nothing is deleted.
if AWS_SECRET_ACCESS_KEY=not-the-secret kin delete-stream --stream-name "$s" >/dev/null 2>"$tmp/err"; then
  failed=$((failed + 1)); echo "not ok - wrong secret: delete-stream succeeded"
elif grep -q "InvalidSignatureException" "$tmp/err"; then
  passed=$((passed + 1)); echo "ok - wrong secret: InvalidSignatureException"
else
  failed=$((failed + 1)); echo "not ok - wrong secret"; sed 's/^/#   /' "$tmp/err"
fi

run delete-stream kin delete-stream --stream-name "$s" && { passed=$((passed + 1)); echo "ok - delete-stream"; }

kill -TERM "$pid"
if wait "$pid"; then passed=$((passed + 1)); echo "ok - sluice drained and exited 0"
else rc=$?; failed=$((failed + 1)); echo "not ok - sluice exited $rc on SIGTERM"; tail -20 "$tmp/sluice.log"; fi
pid=""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
