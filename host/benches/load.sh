#!/usr/bin/env bash
# Load run against a real `nexa up`: GET /health (SQLite + key-value probes)
# and the embedded dashboard (index.html and its main script, brotli) side by
# side with the fallback's trivial JSON 404 in the same host, same run.
# wrk shares the machine's cores with the host; compare the ratio, not the
# absolute numbers.
#
#   host/benches/load.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10}"
connections="${2:-32}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

# NEXA: an already built nexa binary (the tests pass theirs); else build it.
if [ -z "${NEXA:-}" ]; then
  cargo build --release --bin nexa --quiet
fi
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="${NEXA:-$target_dir/release/nexa}"
"$nexa" build >/dev/null 2>&1

state="$(mktemp -d)"
# The repository's nexa.toml with rate limiting off: every figure here is
# measured without it (a load generator is one client, and would be limited).
{ cat nexa.toml; printf '\n[rate_limit]\nenabled = false\n'; } > "$state/nexa.toml"
# Port 0: the system picks a free port (runs may overlap with tests or other
# runs); the host prints the address it got.
"$nexa" up --runtime-config-file runtime-config.dev.toml --host-config-file "$state/nexa.toml" --state-dir "$state" --listen 127.0.0.1:0 2>"$state/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
address=""
for _ in $(seq 1 600); do
  address="$(sed -n 's/^Serving http:\/\///p' "$state/log")"
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$address" ] || { echo "nexa up did not start:" >&2; cat "$state/log" >&2; exit 1; }

run() {
  local path="$1"; shift
  wrk -t2 -c"$connections" -d"${duration}s" --latency "$@" "http://$address$path" |
    awk -v path="$path" '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /^ +50%/ {p50=$2}
      /Non-2xx/ {bad=$5} END {printf "%-30s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n", path, rps, p50, p99, (bad==""?0:bad)}'
}
echo "wrk -t2 -c$connections -d${duration}s (host and wrk share the cores)"
health="$(run /health)"; echo "$health"
trivial="$(run /missing)"; echo "$trivial"
index="$(run / -H 'Accept-Encoding: br')"; echo "$index (brotli)"
script="$(grep -o '/assets/main-[^"]*\.js' frontend/dist/index.html | head -n 1)"
asset="$(run "$script" -H 'Accept-Encoding: br')"; echo "$asset (brotli)"
awk -v a="$(echo "$health" | awk '{print $2}')" -v b="$(echo "$trivial" | awk '{print $2}')" \
  'BEGIN {printf "/health throughput is %.2f of the trivial handler'"'"'s (404 is its expected answer)\n", a/b}'
awk -v a="$(echo "$index" | awk '{print $2}')" -v b="$(echo "$trivial" | awk '{print $2}')" \
  'BEGIN {printf "the dashboard'"'"'s index.html throughput is %.2f of the trivial handler'"'"'s\n", a/b}'
