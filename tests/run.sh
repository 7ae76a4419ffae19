#!/usr/bin/env bash
# Builds and runs the whole suite through CTest. Needs neither root nor
# network: `bash .ci/deps test` installs what it uses, once.
#   bash tests/run.sh              normal build in build/
#   bash tests/run.sh --sanitize   AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for c in cmake cc pkg-config curl nghttp h2load openssl node npm aws promtool chromium nats-server; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
pkg-config --exists criterion 2>/dev/null || missing+=("libcriterion-dev")
[ -d tests/sdk/node_modules/@aws-sdk/client-kinesis ] || missing+=("tests/sdk/node_modules")
[ -d tests/browser/node_modules/playwright-core ] || missing+=("tests/browser/node_modules")
/usr/bin/python3 -c 'import boto3' 2>/dev/null || missing+=("python3-boto3")
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: missing ${missing[*]}; run: bash .ci/deps test" >&2
  exit 1
fi
dir=build
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON -DSLUICE_TESTS=ON)
if [ "${1:-}" = --sanitize ]; then
  dir=build-asan
  opts+=(-DSLUICE_SANITIZE=ON)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$dir" "${opts[@]}"
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 900
