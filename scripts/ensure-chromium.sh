#!/usr/bin/env bash
# Make Debian's Chromium available for the dashboard's browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
exec bash "$(dirname "$0")/apt-install.sh" Chromium chromium chromium-driver
