"""Prints the Markdown table of a bench/run.sh run from its JSON reports.

    python3 bench/summary.py RESULTS_DIR CONNECTIONS

Each workload has `<name>.peak.json` (closed loop, host as A and twin as B,
alternate rounds, medians), `<name>.half.json` (both offered half the host's
peak on an open schedule) and, when OTHER was set, `<name>.other.json`.
"""

import json
import sys
from pathlib import Path

WORKLOADS = [
    ("health", "GET /health"),
    ("item-cache-hit", "GET /items/{id}, cache hit"),
    ("item-postgres", "GET /items/{id}, Postgres (5,000 ids > 1,024 cache slots)"),
    ("item-list", "GET /items?limit=20 (cached page)"),
    ("item-create", "POST /items"),
    ("users-list", "GET /users (bearer token)"),
    ("login", "POST /auth/token (bcrypt cost 12)"),
]


def ms(us):
    return f"{us / 1000:.2f}"


def errors(side):
    return sum(r["errors"]["total"] for r in side["rounds"])


def main():
    results, connections = Path(sys.argv[1]), sys.argv[2]
    print(
        "| workload | host req/s | twin req/s | host / twin "
        "| at 50 % of host peak: host p50 / p99 / p99.9 ms | twin p50 / p99 / p99.9 ms "
        "| errors |"
    )
    print("|---|---|---|---|---|---|---|")
    other_rows = []
    for name, label in WORKLOADS:
        peak_file = results / f"{name}.peak.json"
        if not peak_file.exists():
            continue
        peak = json.loads(peak_file.read_text())
        half = json.loads((results / f"{name}.half.json").read_text())
        host, twin = half["a"]["median"], half["b"]["median"]
        failed = errors(peak["a"]) + errors(peak["b"]) + errors(half["a"]) + errors(half["b"])
        print(
            f"| {label} | {peak['a']['median']['throughput']:,.0f} "
            f"| {peak['b']['median']['throughput']:,.0f} "
            f"| {peak['a']['median']['throughput'] / peak['b']['median']['throughput']:.2f} "
            f"| {ms(host['p50_us'])} / {ms(host['p99_us'])} / {ms(host['p99_9_us'])} "
            f"| {ms(twin['p50_us'])} / {ms(twin['p99_us'])} / {ms(twin['p99_9_us'])} "
            f"| {failed} |"
        )
        other_file = results / f"{name}.other.json"
        if other_file.exists():
            other = json.loads(other_file.read_text())
            other_rows.append(
                f"| {label} | {other['a']['median']['throughput']:,.0f} "
                f"| {other['b']['median']['throughput']:,.0f} "
                f"| {other['a']['median']['throughput'] / max(other['b']['median']['throughput'], 1e-9):.2f} |"
            )
    print(f"\nClosed loop at {connections} connections (login: 4), medians of alternate rounds.")
    if other_rows:
        print("\n| workload | host req/s | other req/s | host / other |")
        print("|---|---|---|---|")
        print("\n".join(other_rows))


if __name__ == "__main__":
    main()
