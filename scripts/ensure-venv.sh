#!/usr/bin/env bash
# Make `python3 -m venv` work: Debian's system Python needs the python3-venv package.
set -euo pipefail
python="${1:-python3}"
"$python" -c 'import ensurepip, venv' 2>/dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "$python cannot create virtualenvs: run 'sudo apt-get install python3-venv'" >&2
  exit 1
fi
echo "installing python3-venv (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-venv >/dev/null
