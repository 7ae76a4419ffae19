#!/bin/sh
# The container's entrypoint. The image listens on every interface (a
# published port must reach it), so when a credentials file is mounted it
# turns signature checking on: every request then needs AWS SigV4 from a key
# in the file (or a bearer token from it on the REST door).
#   docker run -v "$PWD/credentials:/etc/sluice/credentials:ro" -p 4567:4567 sluice
# SLUICE_CREDENTIALS_FILE names another path; an explicit SLUICE_AUTH, or
# --auth/--credentials flags, take precedence. Without a file the gateway
# starts open and logs a warning that it is listening without
# authentication.
set -eu
file=${SLUICE_CREDENTIALS_FILE:-/etc/sluice/credentials}
if [ -z "${SLUICE_AUTH:-}" ] && [ -f "$file" ]; then
  SLUICE_AUTH=sigv4
  SLUICE_CREDENTIALS=$file
  export SLUICE_AUTH SLUICE_CREDENTIALS
fi
exec "${SLUICE_BIN:-/usr/local/bin/sluice}" "$@"
