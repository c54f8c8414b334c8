#!/bin/sh
# Builds the dashboard into frontend/dist, which components/fallback embeds.
# Installs the locked npm packages first when they are missing or stale.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "frontend: npm ci (locked packages from the npm registry)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "frontend: vite build -> frontend/dist" >&2
npm run --silent build
