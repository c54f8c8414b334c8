#!/usr/bin/env python3
"""Cold start of `nexa up`: from starting the process to the first answer.

    python3 bench/cold_start.py [--runs N] [--path /health]

Serves the repository's app (spin.toml, runtime-config.dev.toml, nexa.toml;
the embedded SQLite database) on a free port and polls it every 2 ms from
the moment the process is spawned; a run ends at the first 200. Two cases,
alternating, N runs each (default 5), medians and extremes reported:

- warm artefact cache: the state dir keeps `nexa-artifacts/` from an earlier
  start, so the components are only mapped back in;
- cold artefact cache: `nexa-artifacts/` is removed first, so every
  component is compiled by cranelift before the host binds.

Both keep the database (its schema exists), so the difference is the
artefact cache. Builds `nexa` (release) and the components first.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS = ["health", "fallback", "auth", "items", "users"]


def build():
    print("building nexa (release) and the components...", file=sys.stderr)
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "nexa"], cwd=ROOT, check=True
    )
    for component in COMPONENTS:
        subprocess.run(["sh", "components/build.sh", component], cwd=ROOT, check=True)
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return os.path.join(json.loads(metadata.stdout)["target_directory"], "release", "nexa")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(nexa, work, path, timeout=120.0):
    """Seconds from spawning `nexa up` to its first 200 on `path`."""
    port = free_port()
    env = dict(os.environ, NEXA_ADMIN_LISTEN="off")
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            nexa, "up",
            "-f", os.path.join(work, "spin.toml"),
            "--runtime-config-file", os.path.join(ROOT, "runtime-config.dev.toml"),
            "--host-config-file", os.path.join(ROOT, "nexa.toml"),
            "--state-dir", os.path.join(work, "state"),
            "--listen", f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "nexa.log"), "ab"),
    )
    try:
        while True:
            elapsed = time.perf_counter() - started
            if elapsed > timeout:
                raise RuntimeError(f"no answer within {timeout} s (see {work}/nexa.log)")
            if process.poll() is not None:
                raise RuntimeError(f"nexa up exited with {process.returncode} (see {work}/nexa.log)")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.002)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--path", default="/health")
    args = parser.parse_args()
    nexa = os.environ.get("NEXA") or build()
    work = tempfile.mkdtemp(prefix="nexa-cold-start-")
    try:
        with open(os.path.join(ROOT, "spin.toml")) as manifest:
            text = manifest.read().replace('source = "components/', f'source = "{ROOT}/components/')
        with open(os.path.join(work, "spin.toml"), "w") as manifest:
            manifest.write(text)
        # A first start creates the database and fills the artefact cache.
        first_answer(nexa, work, args.path)
        artifacts = os.path.join(work, "state", "nexa-artifacts")
        results = {"warm artefact cache": [], "cold artefact cache": []}
        for run in range(args.runs):
            results["warm artefact cache"].append(first_answer(nexa, work, args.path))
            shutil.rmtree(artifacts, ignore_errors=True)
            results["cold artefact cache"].append(first_answer(nexa, work, args.path))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
        print(f"First 200 on GET {args.path} after spawning `nexa up` ({args.runs} runs each, alternating):\n")
        print("| artefact cache | median | min | max |")
        print("|---|---|---|---|")
        for case, seconds in results.items():
            ms = [s * 1000 for s in seconds]
            print(f"| {case.split()[0]} | {statistics.median(ms):.0f} ms | {min(ms):.0f} ms | {max(ms):.0f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
