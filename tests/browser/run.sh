#!/usr/bin/env bash
# Runs the console's browser suite with node's test runner against $SLUICE_BIN.
#   SLUICE_BIN=/path/to/sluice bash tests/browser/run.sh [file.test.mjs ...]
# Screenshots go to $SLUICE_ARTIFACTS (default build/tests/browser/).
# Fails (does not skip) when node, Chromium or the npm packages are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_BIN:?SLUICE_BIN must point to the sluice binary}"
chromium=${SLUICE_CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node is not installed (see .ci/deps)" >&2
  exit 1
fi
if [ ! -x "$chromium" ]; then
  echo "FAIL: $chromium is missing: apt-get install chromium (bash .ci/deps test)" >&2
  exit 1
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "FAIL: tests/browser/node_modules is missing or incomplete: run bash tests/browser/install.sh" >&2
  exit 1
fi
cd "$here"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
# One file at a time (each starts its own gateway and browser); no test may
# take a minute.
exec node --test --test-concurrency=1 --test-timeout=60000 "$@"
