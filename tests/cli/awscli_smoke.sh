#!/usr/bin/env bash
# Smoke test with Debian's AWS CLI (package awscli, HTTP/1.1) against the real
# sluice binary: create-stream, wait for ACTIVE, put-record, put-records,
# list-shards, get-shard-iterator, get-records, and one error. The gateway runs
# with --auth sigv4: the CLI's signatures are verified, and a wrong secret is
# refused.
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
"$bin" --listen 127.0.0.1:0 --data-dir "$tmp/data" --auth sigv4 --credentials "$tmp/credentials" \
  2>"$tmp/sluice.log" &
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
# check NAME PYTHON-EXPR: evaluates EXPR with `r` = the JSON in $out (and `v` = hashkeys.json).
check() {
  local name=$1 expr=$2 input=$out
  if python3 -c '
import json, sys
r = json.loads(sys.argv[1]) if sys.argv[1].strip() else None
v = json.load(open(sys.argv[3]))
try:
    ok = eval(sys.argv[2])
except Exception as e:
    print("#   error: %r" % (e,))
    ok = False
sys.exit(0 if ok else 1)' "$input" "$expr" "$vectors/hashkeys.json"; then
    passed=$((passed + 1)); echo "ok - $name"
  else
    failed=$((failed + 1)); echo "not ok - $name"; echo "#   expected: $expr"; echo "#   got: ${input:0:2000}"
  fi
}
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
deadline=$((SECONDS + 15))
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
