#!/usr/bin/env bash
# Make redis-server available for the tests of the cache's Redis relay (they start their
# own throwaway server on 127.0.0.1).
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/apt-install.sh" redis-server --no-install-recommends redis-server
