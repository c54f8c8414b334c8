#!/usr/bin/env bash
# What the observability layer costs on GET /health: three `nexa up` of the
# same app side by side, measured in alternating rounds with wrk:
#
#   baseline  NEXA_BENCH_NO_OBSERVABILITY=1: no metrics recorded, no request
#             span, no access log (the layer bypassed; a bench-only switch)
#   default   metrics, JSON logs with one access line per request, tracing off
#   tracing   the same plus OpenTelemetry at ratio 1.0, exported over
#             OTLP http/protobuf to a live receiver (a small Python server)
#
# Each round runs the three in turn, each for the same seconds; the medians
# of the rounds are compared (rates, not absolute numbers). With two or more
# CPUs and `taskset`, the hosts run on the last CPU and wrk and the receiver
# on the others: a host then has one core to itself and its rate measures
# its cost per request, not how the scheduler shared the cores that round
# (unpinned, runs here moved by ±5 %). PIN=0 turns this off.
#
#   host/benches/observability.sh [rounds] [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
duration="${2:-5}"
connections="${3:-32}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

if [ -z "${NEXA:-}" ]; then
  cargo build --release --bin nexa --quiet
fi
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
nexa="${NEXA:-$target_dir/release/nexa}"
"$nexa" build >/dev/null 2>&1

# Where hosts and the load generator run.
host_cpu=() load_cpu=() threads=2
if [ "${PIN:-1}" != 0 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  last=$(( $(nproc) - 1 ))
  host_cpu=(taskset -c "$last")
  load_cpu=(taskset -c "0-$(( last - 1 ))")
  threads="$last"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
{ cat nexa.toml; printf '\n[rate_limit]\nenabled = false\n'; } > "$work/nexa.toml"

# The live OTLP receiver: accepts every export (200, an empty
# ExportTraceServiceResponse) and counts the bytes.
cat > "$work/receiver.py" <<'EOF'
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        with open(sys.argv[2], "a") as f:
            f.write(f"{length}\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
"${load_cpu[@]}" python3 "$work/receiver.py" x "$work/exports" > "$work/receiver.port" &
pids+=($!)
for _ in $(seq 1 50); do [ -s "$work/receiver.port" ] && break; sleep 0.1; done
receiver_port="$(head -n 1 "$work/receiver.port")"

# start NAME [VAR=value...]: one host with its own state dir; prints nothing,
# leaves its address in $work/NAME.address and its admin in NAME.admin.
start() {
  local name="$1"; shift
  mkdir -p "$work/$name"
  env "$@" NEXA_ADMIN_LISTEN=127.0.0.1:0 RUST_LOG=info "${host_cpu[@]}" "$nexa" up \
    --runtime-config-file runtime-config.dev.toml --host-config-file "$work/nexa.toml" \
    --state-dir "$work/$name" --listen 127.0.0.1:0 2>"$work/$name.log" &
  pids+=($!)
  local pid=$!
  for _ in $(seq 1 600); do
    grep -q '^Serving http://' "$work/$name.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sed -n 's/^Serving http:\/\///p' "$work/$name.log" > "$work/$name.address"
  sed -n 's/^Admin http:\/\///p' "$work/$name.log" > "$work/$name.admin"
  [ -s "$work/$name.address" ] || { echo "nexa up ($name) did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
}
start baseline NEXA_BENCH_NO_OBSERVABILITY=1
start default
start tracing OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$receiver_port" \
  OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_SERVICE_NAME=nexa-bench \
  OTEL_TRACES_SAMPLER=always_on OTEL_BSP_SCHEDULE_DELAY=200 \
  OTEL_BSP_MAX_QUEUE_SIZE=65536 OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2048

rate() {
  "${load_cpu[@]}" wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "http://$(cat "$work/$1.address")/health" |
    awk '/Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$5} END {printf "%s %s\n", rps, (bad==""?0:bad)}'
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

echo "GET /health, $rounds alternating rounds of wrk -t$threads -c$connections -d${duration}s per host${host_cpu:+ (hosts pinned to CPU ${host_cpu[2]})}"
# Warm up: instances made, caches filled, before anything is counted.
for name in baseline default tracing; do
  "${load_cpu[@]}" wrk -t1 -c"$connections" -d1s "http://$(cat "$work/$name.address")/health" >/dev/null
done
for round in $(seq 1 "$rounds"); do
  line="round $round:"
  for name in baseline default tracing; do
    read -r rps bad < <(rate "$name")
    [ "$bad" = 0 ] || { echo "$name answered $bad non-2xx responses" >&2; exit 1; }
    echo "$rps" >> "$work/$name.rates"
    line="$line $name $rps"
  done
  echo "$line"
  # The round's ratios: the three ran back to back, so they share its load.
  paste "$work/baseline.rates" "$work/default.rates" "$work/tracing.rates" | tail -n 1 |
    awk '{print $2/$1 > "'"$work"'/default.ratio.tmp"; print $3/$1 > "'"$work"'/tracing.ratio.tmp"}'
  cat "$work/default.ratio.tmp" >> "$work/default.ratios"
  cat "$work/tracing.ratio.tmp" >> "$work/tracing.ratios"
done

baseline="$(median < "$work/baseline.rates")"
default="$(median < "$work/default.rates")"
tracing="$(median < "$work/tracing.rates")"
printf '%-10s median %10.0f req/s\n' baseline "$baseline" default "$default" tracing "$tracing"
# Two estimates: the ratio of the medians, and the median of the rounds'
# ratios (paired, so less moved by what else the machine does).
off="$(median < "$work/default.ratios")"
on="$(median < "$work/tracing.ratios")"
awk -v a="$default" -v b="$baseline" -v r="$off" 'BEGIN {printf "tracing off: %.3f of the baseline (median of round ratios %.3f; cost %.1f %%; budget 3 %%)\n", a/b, r, (1-r)*100}'
awk -v a="$tracing" -v b="$baseline" -v r="$on" 'BEGIN {printf "tracing on:  %.3f of the baseline (median of round ratios %.3f; cost %.1f %%; budget 15 %%)\n", a/b, r, (1-r)*100}'
metrics="$(curl -s "http://$(cat "$work/tracing.admin")/metrics")"
exported="$(echo "$metrics" | awk '/^trace_spans_exported_total / {print $2}')"
dropped="$(echo "$metrics" | awk '/^trace_spans_dropped_total / {print $2}')"
echo "spans exported ${exported:-0}, dropped ${dropped:-0}; receiver got $(wc -l < "$work/exports" 2>/dev/null || echo 0) export requests"
