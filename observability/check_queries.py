#!/usr/bin/env python3
"""Evaluates every dashboard query and recording rule against a Prometheus.

Collects the PromQL of every Grafana panel target (`targets[].expr`) in
observability/grafana/dashboards/*.json and of every recording rule in
observability/prometheus/rules/*.yml, runs each through the Prometheus HTTP API
(/api/v1/query, at the current time), prints each with its outcome, and exits 1
if any query fails or returns no data. Grafana variables are replaced first:
$__rate_interval and $__interval by 1m, $__range by 1h, and template variables
($var, ${var}, ${var:format}, [[var]]) by `.+`, their "All" value (the
dashboards use them only inside `=~` matchers).

    python3 observability/check_queries.py http://127.0.0.1:9090 \\
        --allow-empty component_traps_total --wait 60
    python3 observability/check_queries.py --list

--allow-empty REGEX (repeatable) names queries that may legitimately have no
data (say, traps on a host that never trapped): a query is allowed to be empty
when REGEX matches (re.search) its PromQL or its name (the rule's record name,
or "dashboard title / panel title"). --wait SECONDS keeps retrying the queries
that have no data yet (recording rules need an evaluation after the first
scrapes) until they all have data or the time is up.

Standard library only. The rules are read with a small reader for the YAML
subset the rule files use (see rule_expressions); the unit tests check it
finds every rule promtool finds.
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "grafana" / "dashboards"
RULES = HERE / "prometheus" / "rules"

# Grafana's built-in interval variables, and what a check uses for them.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
# A template variable's value in a check: its "All" value in the dashboards.
VARIABLE_VALUE = ".+"

_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


class Query:
    """One PromQL expression and where it came from."""

    def __init__(self, source, name, expr):
        self.source = source  # "rule" or "dashboard"
        self.name = name  # record name, or "dashboard title / panel title"
        self.expr = expr  # as sent to Prometheus

    def __repr__(self):
        return f"Query({self.source!r}, {self.name!r}, {self.expr!r})"


def substitute(expr):
    """`expr` with Grafana's variables replaced by values Prometheus accepts."""

    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTINS.get(name, VARIABLE_VALUE)

    return _VARIABLE.sub(value, expr)


def variables(expr):
    """The names of the Grafana variables in `expr`."""
    return [m.group(1) or m.group(2) or m.group(3) for m in _VARIABLE.finditer(expr)]


# --- dashboards -----------------------------------------------------------------


def _panels(panels):
    for p in panels:
        yield p
        # Collapsed rows keep their panels inside.
        yield from _panels(p.get("panels", []))


def dashboard_expressions(path):
    """(panel title, raw expr) of every Prometheus target of a dashboard file."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for panel in _panels(dashboard.get("panels", [])):
        for t in panel.get("targets", []):
            expr = t.get("expr", "").strip()
            if expr and not t.get("hide"):
                out.append((f"{dashboard.get('title', path)} / {panel.get('title', '')}", expr))
    return out


# --- rules ------------------------------------------------------------------------

_KEY = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>record|alert|expr):\s*(?P<value>.*?)\s*$")
_BLOCK = re.compile(r"^[|>][+-]?\d*$")


def _scalar(value):
    """A one-line YAML scalar: plain, 'single' or "double" quoted."""
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        return value[1:-1].replace("''", "'")
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return json.loads(value)
    # A plain scalar ends at a comment.
    return re.sub(r"\s+#.*$", "", value)


def rule_expressions(text):
    """(kind, name, expr) of every rule in a Prometheus rule file's text, kind being
    "record" or "alert".

    Reads the subset of YAML rule files are written in: `record:`/`alert:` and
    `expr:` keys whose value is a one-line scalar (plain or quoted) or a block
    scalar (`|`, `|-`, `>`...) on the lines indented below the key. Folded
    blocks (`>`) are joined with spaces, which PromQL does not mind.
    """
    lines = text.splitlines()
    rules = []
    current = None  # [kind, name, expr]
    i = 0
    while i < len(lines):
        m = _KEY.match(lines[i])
        i += 1
        if not m:
            continue
        key, value, indent = m.group("key"), m.group("value"), len(m.group("indent"))
        if key in ("record", "alert"):
            current = [key, _scalar(value), None]
            rules.append(current)
            continue
        # expr
        if _BLOCK.match(value):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            margin = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
            body = [b[margin:] for b in block]
            expr = (" " if value.startswith(">") else "\n").join(body).strip()
        else:
            expr = _scalar(value)
        if current is None or current[2] is not None:
            raise ValueError(f"an expr: without its record: or alert: near line {i}")
        current[2] = expr
    for kind, name, expr in rules:
        if not expr:
            raise ValueError(f"{kind} {name}: no expr found")
    return [tuple(r) for r in rules]


# --- collecting and checking --------------------------------------------------------


def collect(dashboards_dir=DASHBOARDS, rules_dir=RULES):
    """Every query to check: recording rules first, then dashboard targets."""
    queries = []
    for path in sorted(Path(rules_dir).glob("*.yml")):
        for kind, name, expr in rule_expressions(path.read_text(encoding="utf-8")):
            if kind == "record":
                queries.append(Query("rule", name, expr))
    for path in sorted(Path(dashboards_dir).glob("*.json")):
        for name, expr in dashboard_expressions(path):
            queries.append(Query("dashboard", name, substitute(expr)))
    return queries


def one_line(expr):
    return " ".join(expr.split())


def evaluate(base_url, expr, timeout=10.0):
    """(number of results, None) or (None, error message) for one instant query."""
    url = base_url.rstrip("/") + "/api/v1/query"
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        # Prometheus answers a bad query with 400 and a JSON error body.
        try:
            body = json.load(e)
        except ValueError:
            return None, f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, f"cannot query {url}: {e}"
    if body.get("status") != "success":
        return None, f"{body.get('errorType', 'error')}: {body.get('error', body)}"
    result = body.get("data", {}).get("result")
    if body["data"].get("resultType") in ("scalar", "string"):
        return 1, None
    return len(result or []), None


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Evaluate every Grafana dashboard query and recording rule against a Prometheus.",
        epilog="Exit status: 0 when every query returned data (or is allowed to be empty), 1 otherwise.",
    )
    parser.add_argument("prometheus", nargs="?", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--allow-empty", metavar="REGEX", action="append", default=[],
                        help="a query whose PromQL or name matches may return no data (repeatable)")
    parser.add_argument("--wait", metavar="SECONDS", type=float, default=0.0,
                        help="retry queries without data until they have some or SECONDS have passed")
    parser.add_argument("--list", action="store_true", help="print the queries and exit without querying")
    parser.add_argument("--dashboards", type=Path, default=DASHBOARDS, help=f"default {DASHBOARDS}")
    parser.add_argument("--rules", type=Path, default=RULES, help=f"default {RULES}")
    args = parser.parse_args(argv)

    queries = collect(args.dashboards, args.rules)
    if not queries:
        print(f"no queries found in {args.dashboards} or {args.rules}", file=sys.stderr)
        return 1
    if args.list:
        for q in queries:
            print(f"{q.source} {q.name}\n    {one_line(q.expr)}")
        return 0
    if not args.prometheus:
        parser.error("a Prometheus base URL is needed (or --list)")
    allowed = [re.compile(r) for r in args.allow_empty]

    def may_be_empty(q):
        return any(r.search(q.expr) or r.search(q.name) for r in allowed)

    deadline = time.monotonic() + args.wait
    outcome = {}
    pending = list(queries)
    while True:
        for q in pending:
            outcome[id(q)] = evaluate(args.prometheus, q.expr)
        pending = [q for q in queries if outcome[id(q)][0] == 0 and not may_be_empty(q)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    failed = 0
    for q in queries:
        count, error = outcome[id(q)]
        if error is not None:
            status, failed = "ERROR", failed + 1
        elif count:
            status = f"ok ({count})"
        elif may_be_empty(q):
            status = "empty, allowed"
        else:
            status, failed = "EMPTY", failed + 1
        print(f"{status:<15} {q.source} {q.name}\n{'':<15} {one_line(q.expr)}")
        if error is not None:
            print(f"{'':<15} {error}")
    print(f"\n{len(queries)} queries, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
