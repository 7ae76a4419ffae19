#!/usr/bin/env bash
# Installs the browser suite's npm packages (playwright-core only: it drives
# Debian's /usr/bin/chromium and downloads no browser) into
# tests/browser/node_modules (not committed), exactly as pinned by
# package-lock.json. Idempotent: does nothing when node_modules matches it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stamp=$here/node_modules/.package-lock.json   # written by npm, mirrors the installed tree
if [ -d "$here/node_modules" ] && [ -f "$stamp" ] && [ ! "$here/package-lock.json" -nt "$stamp" ] \
   && [ ! "$here/package.json" -nt "$stamp" ]; then
  exit 0
fi
echo "installing tests/browser npm packages (npm ci)"
npm ci --prefix "$here" --no-audit --no-fund
