#!/usr/bin/env bash
# Make redis-server available for the tests of the cache's Redis relay (they start their
# own throwaway server on 127.0.0.1).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "redis-server is not installed: run 'sudo apt-get install redis-server'" >&2
  exit 1
fi
echo "installing redis-server (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
