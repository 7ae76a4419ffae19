#!/usr/bin/env bash
# The Docker image's entrypoint (gateway/docker/entrypoint.sh) run directly
# against the real binary: with a credentials file at SLUICE_CREDENTIALS_FILE
# unsigned calls are refused and a bearer token from the file is accepted;
# without one the gateway is open and warns when listening beyond loopback.
set -euo pipefail
: "${SLUICE_BIN:?}"
here=$(cd "$(dirname "$0")" && pwd)
entry=$here/../../gateway/docker/entrypoint.sh
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/log" ] && tail -20 "$tmp/log" >&2; exit 1; }

# start LISTEN [env...]: the entrypoint with a fresh data dir; sets port and pid.
start() {
  local listen=$1; shift
  rm -rf "$tmp/data"; : >"$tmp/log"
  env "$@" SLUICE_BIN="$SLUICE_BIN" SLUICE_LISTEN="$listen" SLUICE_DATA_DIR="$tmp/data" \
    sh "$entry" 2>"$tmp/log" &
  pid=$!
  port=""
  for _ in $(seq 200); do
    port=$(sed -n 's/.*"event":"listening".*"port":"\([0-9]*\)".*/\1/p' "$tmp/log" | head -1)
    [ -n "$port" ] && return
    kill -0 "$pid" 2>/dev/null || fail "the gateway exited during startup"
    sleep 0.05
  done
  fail "no listening line"
}
stop() { kill "$pid"; wait "$pid" || fail "exit status $? on SIGTERM"; pid=""; }
create() { # create NAME [curl args...] -> HTTP status
  local name=$1; shift
  curl -s -o "$tmp/out" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/streams" \
    -H 'Content-Type: application/json' -d "{\"StreamName\":\"$name\",\"ShardCount\":1}" "$@"
}

printf 'AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\ntoken:tok-docker\n' >"$tmp/credentials"

# A mounted credentials file: signatures (or the file's tokens) required.
start 127.0.0.1:0 SLUICE_CREDENTIALS_FILE="$tmp/credentials"
[ "$(create open)" = 400 ] || fail "an unsigned CreateStream was not refused: $(cat "$tmp/out")"
grep -q MissingAuthenticationTokenException "$tmp/out" || fail "wrong refusal: $(cat "$tmp/out")"
[ "$(create signed -H 'Authorization: Bearer tok-docker')" = 200 ] || fail "the file's token was refused: $(cat "$tmp/out")"
stop

# An explicit SLUICE_AUTH wins over the mounted file.
start 127.0.0.1:0 SLUICE_CREDENTIALS_FILE="$tmp/credentials" SLUICE_AUTH=none
[ "$(create explicit)" = 200 ] || fail "SLUICE_AUTH=none did not win: $(cat "$tmp/out")"
stop

# No file: open, and a warning once it listens beyond loopback. 0.0.0.0 is
# bound but only reached through 127.0.0.1 here.
start 0.0.0.0:0 SLUICE_CREDENTIALS_FILE="$tmp/absent"
grep -q '"event":"unauthenticated"' "$tmp/log" || fail "no warning for 0.0.0.0 without --auth"
[ "$(create anyone)" = 200 ] || fail "the open gateway refused: $(cat "$tmp/out")"
stop
start 127.0.0.1:0 SLUICE_CREDENTIALS_FILE="$tmp/absent"
! grep -q '"event":"unauthenticated"' "$tmp/log" || fail "a warning for loopback"
stop
echo "docker entrypoint: ok"
