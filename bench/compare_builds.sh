#!/usr/bin/env bash
# Two builds of `nexa` side by side on the same request: the fixture
# component's app served by each, measured with wrk in alternating rounds.
# For a change to the host's request path: build the old commit's `nexa`,
# copy it aside, build the new one, and compare.
#
#   bench/compare_builds.sh OLD_NEXA NEW_NEXA [path] [rounds] [seconds] [connections]
#
# Prints each round and the medians (req/s and p99) of both, and NEW / OLD.
set -euo pipefail
cd "$(dirname "$0")/.."
old="${1:?the old nexa binary}"
new="${2:?the new nexa binary}"
path="${3:-/fixture/ok}"
rounds="${4:-5}"
seconds="${5:-5}"
connections="${6:-16}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
sh components/build.sh fixture

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cat > "$work/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "compare-builds"
[variables]
greeting = { default = "hello" }
secret_word = { default = "x" }
[[trigger.http]]
route = "/fixture/..."
component = "fixture"
[component.fixture]
source = "$PWD/components/fixture/fixture.wasm"
TOML
printf 'admin_listen = "off"\n[rate_limit]\nenabled = false\n' > "$work/nexa.toml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A url
for build in old new; do
  port="$(free_port)"
  binary="$old"; [ "$build" = new ] && binary="$new"
  "$binary" up --from "$work/spin.toml" --listen "127.0.0.1:$port" --state-dir "$work/$build" >"$work/$build.log" 2>&1 &
  pids+=($!)
  url[$build]="http://127.0.0.1:$port$path"
done
for build in old new; do
  for _ in $(seq 1 300); do curl -sf "${url[$build]}" >/dev/null && break; sleep 0.1; done
  curl -sf "${url[$build]}" >/dev/null || { echo "$build did not start:" >&2; cat "$work/$build.log" >&2; exit 1; }
done

threads=$(( connections < 2 ? connections : 2 ))
for round in $(seq 1 "$rounds"); do
  for build in old new; do
    read -r rate p99 < <(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "${url[$build]}" |
      awk '/Requests\/sec/{r=$2} / 99%/{p=$2} END{print r, p}')
    echo "round $round $build: $rate req/s, p99 $p99"
    echo "$build $rate $p99" >> "$work/results"
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def ms(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)
median = {}
for build in ("old", "new"):
    rates = [float(r[1]) for r in rows if r[0] == build]
    p99s = [ms(r[2]) for r in rows if r[0] == build]
    median[build] = (statistics.median(rates), statistics.median(p99s))
    print(f"{build}: median {median[build][0]:,.0f} req/s, p99 {median[build][1]:.2f} ms")
print(f"new / old: {median['new'][0] / median['old'][0]:.2f}")
PY
