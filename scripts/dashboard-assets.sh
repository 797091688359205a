#!/usr/bin/env bash
# Install the dashboard's front-end libraries from the npm registry (the versions
# pinned in package-lock.json) and copy the files it serves into the package:
# src/agentos/dashboard/static/vendor/ (git-ignored; `agentos serve` serves it).
# Nothing is fetched at run time and nothing third-party is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=src/agentos/dashboard/static/vendor
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "the dashboard's front-end libraries come from the npm registry, but node/npm are" \
       "not installed: install Node.js 18 or newer with npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
rm -rf "$vendor.tmp" && mkdir -p "$vendor.tmp"
# what the pages import (ES modules) and what the browser tests inject (axe-core)
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css "$vendor.tmp/"
cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs "$vendor.tmp/cytoscape.mjs"
cp node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.mjs "$vendor.tmp/cytoscape-dagre.mjs"
for lib in uplot cytoscape cytoscape-dagre; do  # their licences travel with them
  cp "node_modules/$lib/LICENSE" "$vendor.tmp/LICENSE.$lib"
done
rm -rf "$vendor" && mv "$vendor.tmp" "$vendor"
touch "$vendor/.installed"
