#!/usr/bin/env bash
# Installs what the tests need, builds, and runs the whole suite through CTest.
#   bash tests/run.sh              normal build in build/
#   bash tests/run.sh --sanitize   AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps test
bash tests/sdk/install.sh
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
ctest --test-dir "$dir" --output-on-failure --timeout 900
