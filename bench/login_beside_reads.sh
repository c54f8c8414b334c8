#!/usr/bin/env bash
# Logins with and without `[component.auth] max_concurrent_requests_when_alone`,
# side by side, alternately (`rounds` rounds of each), on the repository's
# app with the embedded SQLite database:
#
#   bench/login_beside_reads.sh [rounds]
#
# Each round: 10 clients log in for 9 s; 1.5 s in, 8 connections of
# `GET /users/me` (bearer token) run for 6 s beside them; then 4 clients log
# in with nothing else running. Prints the `nexa bench` summaries: does
# widening logins cost the other route its rate or its tail latency?
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
if [ -z "${NEXA:-}" ]; then
  cargo build --release --bin nexa --quiet
fi
for c in health fallback auth items users; do sh components/build.sh "$c"; done
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="${NEXA:-$target_dir/release/nexa}"

work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
sed "s#source = \"components/#source = \"$PWD/components/#" spin.toml > "$work/spin.toml"
{ cat nexa.toml; printf "\n[rate_limit]\nenabled = false\n"; } > "$work/alone.toml"
sed '/max_concurrent_requests_when_alone/d' "$work/alone.toml" > "$work/fixed.toml"
login=(--method POST -H "Content-Type: application/x-www-form-urlencoded"
  --body "username=admin&password=admin-dev-password")
summary() { # report: its request count and latency line
  grep -E "^requests" "$1" | tr -s ' '
  grep -A1 "^P50" "$1" | sed 's/^/  /'
}
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
for round in $(seq 1 "$rounds"); do
  for config in fixed alone; do
    echo "== round $round: $([ $config = alone ] && echo "max_concurrent_requests_when_alone = 2" || echo "one login at a time")"
    rm -rf "$work/state"
    NEXA_ADMIN_LISTEN=off "$nexa" up -f "$work/spin.toml" --runtime-config-file runtime-config.dev.toml \
      --host-config-file "$work/$config.toml" --state-dir "$work/state" \
      --listen "127.0.0.1:$port" >/dev/null 2>"$work/nexa.log" &
    pid=$!
    until curl -sf -o /dev/null "127.0.0.1:$port/health"; do
      kill -0 "$pid" 2>/dev/null || { cat "$work/nexa.log" >&2; exit 1; }
      sleep 0.1
    done
    token="$(curl -sf -X POST "127.0.0.1:$port/auth/token" -d username=admin -d password=admin-dev-password |
      python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')"
    "$nexa" bench "http://127.0.0.1:$port/auth/token" "${login[@]}" --connections 10 --duration 9s --warmup 0s >"$work/logins.txt" 2>&1 &
    logins=$!
    sleep 1.5
    "$nexa" bench "http://127.0.0.1:$port/users/me" -H "Authorization: Bearer $token" \
      --connections 8 --duration 6s --warmup 0s >"$work/reads.txt" 2>&1
    wait "$logins"
    echo "GET /users/me beside logins:"; summary "$work/reads.txt"
    echo "logins (10 clients, reads beside them for 6 of the 9 s):"; summary "$work/logins.txt"
    "$nexa" bench "http://127.0.0.1:$port/auth/token" "${login[@]}" --connections 4 --duration 6s --warmup 1s >"$work/alone.txt" 2>&1
    echo "logins alone (4 clients):"; summary "$work/alone.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
done
