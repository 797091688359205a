#!/usr/bin/env bash
# Make PostgreSQL's server binaries available for the tests, which start their
# own throwaway cluster (or use AGENTOS_TEST_POSTGRES_URL when it is set).
set -euo pipefail
[ -n "${AGENTOS_TEST_POSTGRES_URL:-}" ] && exit 0
if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL is not installed: run 'sudo apt-get install postgresql' or set AGENTOS_TEST_POSTGRES_URL" >&2
  exit 1
fi
exec bash "$(dirname "$0")/apt-install.sh" PostgreSQL postgresql
