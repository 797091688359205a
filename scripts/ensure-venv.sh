#!/usr/bin/env bash
# Make `python3 -m venv` work: Debian's system Python needs the python3-venv package.
set -euo pipefail
python="${1:-python3}"
"$python" -c 'import ensurepip, venv' 2>/dev/null && exit 0
exec bash "$(dirname "$0")/apt-install.sh" python3-venv python3-venv
