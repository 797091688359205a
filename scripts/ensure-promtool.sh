#!/usr/bin/env bash
# Make Prometheus' promtool available: the tests check GET /metrics with
# `promtool check metrics`. Debian's prometheus package carries it (no service is
# started where there is no systemd, and nothing here starts one).
set -euo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/apt-install.sh" promtool --no-install-recommends prometheus
