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

cargo build --release --bin nexa --quiet
for c in fixture fallback; do sh components/build.sh "$c"; done
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="$target_dir/release/nexa"

work="$(mktemp -d)"
db="nexa_bench_$$"
port=3918
cleanup() {
  kill "${pid:-}" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 del nexa-bench-key >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
psql -h 127.0.0.1 -U postgres -d "$db" -qc \
  "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
   INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10000) g;"
redis-cli -h 127.0.0.1 set nexa-bench-key "a value of some bytes" >/dev/null

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
"$nexa" up -f "$work/spin.toml" --runtime-config-file "$work/rc.toml" --listen "127.0.0.1:$port" 2>"$work/log" &
pid=$!
for _ in $(seq 1 100); do grep -q "Serving http://" "$work/log" && break; sleep 0.1; done

post_script() {
  cat > "$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
LUA
}
post_script pg "{\"address\":\"postgres://postgres@127.0.0.1:5432/$db?sslmode=disable\",\"sql\":\"SELECT id, name FROM items WHERE id = \$1\",\"params\":[{\"int32\":4242}]}"
post_script redis '{"address":"redis://127.0.0.1:6379","op":"get","key":"nexa-bench-key"}'

run() { # label path [script]
  local args=(-t2 "-c$connections" "-d${duration}s" --latency)
  [ -n "${3:-}" ] && args+=(-s "$work/$3.lua")
  wrk "${args[@]}" "http://127.0.0.1:$port$2" |
    awk -v label="$1" '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /^ +50%/ {p50=$2}
      /Non-2xx/ {bad=$5} END {printf "%-26s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n", label, rps, p50, p99, (bad==""?0:bad)}'
}
echo "wrk -t2 -c$connections -d${duration}s (host, wrk, PostgreSQL and Redis share the cores)"
run "trivial (/fixture/ok)" /fixture/ok
run "postgres primary-key" /fixture/pg pg
run "redis GET" /fixture/redis redis
