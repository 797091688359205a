#!/usr/bin/env bash
# Make Prometheus' promtool available: the tests check GET /metrics with
# `promtool check metrics`. Debian's prometheus package carries it (no service is
# started where there is no systemd, and nothing here starts one).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "promtool is not installed: run 'sudo apt-get install prometheus'" >&2
  exit 1
fi
echo "installing promtool (apt-get install prometheus)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
