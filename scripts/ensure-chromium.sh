#!/usr/bin/env bash
# Make Debian's Chromium available for the dashboard's browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is not installed: run 'sudo apt-get install chromium chromium-driver'" >&2
  exit 1
fi
echo "installing Chromium (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
