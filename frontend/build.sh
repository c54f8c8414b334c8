#!/bin/sh
# Builds the dashboard into frontend/dist, which components/fallback embeds.
# Installs the locked npm packages first when they are missing or stale, and
# skips the build when dist is newer than every input.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "frontend: npm ci (locked packages from the npm registry)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
inputs="src public index.html api-docs.html package.json package-lock.json vite.config.ts tsconfig*.json"
if [ -f dist/index.html ] && [ -z "$(find $inputs -newer dist/index.html 2>/dev/null | head -n 1)" ]; then
  echo "frontend: dist is up to date" >&2
  exit 0
fi
echo "frontend: tsc + vite build -> frontend/dist" >&2
npm run --silent build
