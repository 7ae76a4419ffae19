#!/usr/bin/env bash
# Runs the SDK suite with every gateway on the jetstream backend: starts a
# NATS JetStream cluster (NODES, default 3) on free loopback ports, runs
# tests/sdk/run.sh against it, and stops it by PID whatever happens.
#   SLUICE_BIN=/path/to/sluice bash tests/sdk/run-jetstream.sh [file.test.mjs ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/../lib/nats-cluster.sh"
nodes=${NODES:-3}
dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-nats-XXXXXX")
cleanup() { bash "$cluster" stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
eval "$(bash "$cluster" up --nodes "$nodes" --dir "$dir" | grep -E '^NATS_(URL|MONITOR)=')"
export SLUICE_BACKEND=jetstream SLUICE_NATS_URL="$NATS_URL" NATS_DIR="$dir" NODES="$nodes"
export NATS_MONITOR
export SLUICE_NATS_REPLICAS=${SLUICE_NATS_REPLICAS:-$nodes}
bash "$here/run.sh" "$@"
