#!/usr/bin/env bash
# Nexa's host against its native twin (`nexa-twin`: the same handler code and
# SQL compiled natively behind axum), side by side on one Postgres database,
# with `nexa bench` as the load generator:
#
#   bench/run.sh [seconds] [rounds] [connections]
#
# For each workload: closed-loop peak throughput of both, A (host) and B
# (twin) alternately, `rounds` rounds each, medians; then both offered the
# same open-loop load, half of the host's peak, so latency is compared at
# one rate and counted from each request's due time (no coordinated
# omission). OTHER=http://host:port adds a third target (Spin serving the
# same .wasm, or any service with these routes), compared with the host the
# same way. Rate limiting is off (one client). Results: a Markdown table on
# stdout and every report as JSON in $OUT (default bench/results/).
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rounds="${2:-3}"
connections="${3:-16}"
out="${OUT:-bench/results}"
mkdir -p "$out"

# NEXA / NEXA_TWIN: already built binaries; else build both.
if [ -z "${NEXA:-}" ] || [ -z "${NEXA_TWIN:-}" ]; then
  echo "building nexa and nexa-twin (release)..." >&2
  cargo build --release --bin nexa --bin nexa-twin --quiet
fi
for c in health fallback auth items users; do sh components/build.sh "$c"; done
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="${NEXA:-$target_dir/release/nexa}"
twin="${NEXA_TWIN:-$target_dir/release/nexa-twin}"

work="$(mktemp -d)"
db="nexa_bench_$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
# A Redis of this run's own for the items cache (both servers share it, as
# replicas would), on a free port.
redis_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
database_url="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"

# The repository's app as it is deployed: its spin.toml, the development
# secrets (bcrypt at the production cost, 12), the items cache on Redis,
# and nexa.toml with rate limiting off.
sed "s#source = \"components/#source = \"$PWD/components/#" spin.toml > "$work/spin.toml"
cat runtime-config.dev.toml > "$work/rc.toml"
cat >> "$work/rc.toml" <<TOML

[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:$redis_port"
TOML
{ cat nexa.toml; printf "\n[rate_limit]\nenabled = false\n"; } > "$work/nexa.toml"

start() { # name binary [args...]: starts it in the background, logging to $work/<name>.log
  local name="$1" binary="$2"; shift 2
  SPIN_VARIABLE_DATABASE_URL="$database_url" NEXA_ADMIN_LISTEN=off \
    "$binary" "$@" -f "$work/spin.toml" --runtime-config-file "$work/rc.toml" \
    --state-dir "$work/state-$name" --listen 127.0.0.1:0 >/dev/null 2>"$work/$name.log" &
  pids+=($!)
}
url_of() { # name pid: waits until it serves, prints its URL
  local address=""
  for _ in $(seq 1 600); do
    address="$(sed -n 's/^Serving http:\/\///p' "$work/$1.log")"
    [ -n "$address" ] && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$address" ] || { echo "$1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
  echo "http://$address"
}
start host "$nexa" up
host_url="$(url_of host "${pids[-1]}")"
start twin "$twin"
twin_url="$(url_of twin "${pids[-1]}")"
echo "host $host_url, twin $twin_url, database $db" >&2

# 5,000 items beyond the seeded ten, so reads can name more distinct ids
# than the cache has slots (1,024).
# The first read creates and seeds the schema.
curl -fsS "$host_url/items" >/dev/null
psql -h 127.0.0.1 -U postgres -d "$db" -qc \
  "INSERT INTO items (name, description, price, owner_id)
   SELECT 'bench item ' || g, 'for the benchmark', 9.99, 1 FROM generate_series(1, 5000) g;"
token="$(curl -fsS "$host_url/auth/token" -d username=admin -d password=admin-dev-password |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

bench() { # label args...: one comparison, JSON kept
  local label="$1"; shift
  echo "  $label" >&2
  "$nexa" bench --json --rounds "$rounds" --duration "${seconds}s" --warmup 1s \
    --max-error-ratio 1 "$@" > "$out/$label.json"
}

workload() { # name connections path [nexa bench request args...]
  local name="$1" conns="$2" path="$3"; shift 3
  echo "$name" >&2
  bench "$name.peak" "$host_url$path" --compare "$twin_url$path" --connections "$conns" "$@"
  local rate
  # Half the host's peak, but at least two requests due in the window (a
  # short run of a slow route, such as a login, would have none).
  rate="$(python3 -c 'import json,sys; print(round(max(json.load(open(sys.argv[1]))["a"]["median"]["throughput"] / 2, 2 / float(sys.argv[2])), 2))' "$out/$name.peak.json" "$seconds")"
  bench "$name.half" "$host_url$path" --compare "$twin_url$path" --rate "$rate" --connections 64 "$@"
  if [ -n "${OTHER:-}" ]; then
    bench "$name.other" "$host_url$path" --compare "$OTHER$path" --connections "$conns" "$@"
  fi
}

auth=(-H "Authorization: Bearer $token")
workload health "$connections" /health
workload item-cache-hit "$connections" /items/1
workload item-postgres "$connections" '/items/{id}' --ids 11..5010
workload item-list "$connections" '/items?limit=20'
workload item-create "$connections" /items --method POST \
  -H 'Content-Type: application/json' --body '{"name":"bench","price":1.5}' "${auth[@]}"
workload users-list "$connections" /users "${auth[@]}"
workload login 4 /auth/token --method POST \
  -H 'Content-Type: application/x-www-form-urlencoded' --body 'username=admin&password=admin-dev-password'

python3 bench/summary.py "$out" "$connections"
