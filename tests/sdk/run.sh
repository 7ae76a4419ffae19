#!/usr/bin/env bash
# Runs the SDK suite with node's test runner against $SLUICE_BIN.
#   SLUICE_BIN=/path/to/sluice bash tests/sdk/run.sh [file.test.mjs ...]
# Fails (does not skip) when the npm packages are not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_BIN:?SLUICE_BIN must point to the sluice binary}"
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node is not installed (apt-get install nodejs npm, see .ci/deps)" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/@aws-sdk/client-kinesis" ] || [ ! -x "$here/node_modules/.bin/redocly" ]; then
  echo "FAIL: tests/sdk/node_modules is missing or incomplete: run \`npm ci --prefix tests/sdk\` (or bash tests/sdk/install.sh)" >&2
  exit 1
fi
cd "$here"
if [ $# -eq 0 ]; then set -- *.test.mjs; fi
# One file at a time: each starts its own servers; this keeps timings stable on 2 cores.
exec node --test --test-concurrency=1 --test-timeout=120000 "$@"
