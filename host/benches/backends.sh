#!/usr/bin/env bash
# Load run of the pooled backends: a handler doing one Postgres primary-key
# query and one doing one Redis GET (the test fixture component, through the
# real host), side by side with the same component's trivial route.
# Needs PostgreSQL and Redis on 127.0.0.1 (trust auth) and wrk.
#
#   host/benches/backends.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10}"
connections="${2:-32}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

# NEXA: an already built nexa binary (the tests pass theirs); else build it.
if [ -z "${NEXA:-}" ]; then
  cargo build --release --bin nexa --quiet
fi
for c in fixture fallback; do sh components/build.sh "$c"; done
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="${NEXA:-$target_dir/release/nexa}"

work="$(mktemp -d)"
db="nexa_bench_$$"
key="nexa-bench-key-$$"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 del "$key" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
psql -h 127.0.0.1 -U postgres -d "$db" -qc \
  "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
   INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10000) g;"
redis-cli -h 127.0.0.1 set "$key" "a value of some bytes" >/dev/null

cat > "$work/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[variables]
greeting = { default = "hello" }
secret_word = { default = "x" }
[[trigger.http]]
route = "/fixture/..."
component = "fixture"
[component.fixture]
source = "$PWD/components/fixture/fixture.wasm"
allowed_outbound_hosts = ["postgres://127.0.0.1:5432", "redis://127.0.0.1:6379"]
TOML
printf "[outbound_pg]\nmax_connections = ${PG_POOL:-16}\n" > "$work/rc.toml"
# Rate limiting off, as for every figure in the README (wrk is one client).
printf "[rate_limit]\nenabled = false\n" > "$work/nexa.toml"
# Port 0: the system picks a free port (runs may overlap with tests or other
# runs); the host prints the address it got.
"$nexa" up -f "$work/spin.toml" --runtime-config-file "$work/rc.toml" --state-dir "$work/state" --listen 127.0.0.1:0 2>"$work/log" &
pid=$!
address=""
for _ in $(seq 1 600); do
  address="$(sed -n 's/^Serving http:\/\///p' "$work/log")"
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$address" ] || { echo "nexa up did not start:" >&2; cat "$work/log" >&2; exit 1; }

post_script() {
  cat > "$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
LUA
}
post_script pg "{\"address\":\"postgres://postgres@127.0.0.1:5432/$db?sslmode=disable\",\"sql\":\"SELECT id, name FROM items WHERE id = \$1\",\"params\":[{\"int32\":4242}]}"
post_script redis "{\"address\":\"redis://127.0.0.1:6379\",\"op\":\"get\",\"key\":\"$key\"}"

run() { # label path [script]
  local args=(-t2 "-c$connections" "-d${duration}s" --latency)
  [ -n "${3:-}" ] && args+=(-s "$work/$3.lua")
  wrk "${args[@]}" "http://$address$2" |
    awk -v label="$1" '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /^ +50%/ {p50=$2}
      /Non-2xx/ {bad=$5} END {printf "%-26s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n", label, rps, p50, p99, (bad==""?0:bad)}'
}
echo "wrk -t2 -c$connections -d${duration}s (host, wrk, PostgreSQL and Redis share the cores)"
run "trivial (/fixture/ok)" /fixture/ok
run "postgres primary-key" /fixture/pg pg
run "redis GET" /fixture/redis redis
