#!/usr/bin/env python3
"""Writes the Nexa Grafana dashboards to observability/grafana/dashboards/.

Standard library only; the output is deterministic (sorted keys, fixed ids and
uids, no timestamps), so the committed JSON is this script's output:

    python3 observability/grafana/build_dashboards.py          # write
    python3 observability/grafana/build_dashboards.py --check  # exit 1 if stale

Conventions that observability/check_queries.py relies on to evaluate every
panel query against a real Prometheus: every query is a Prometheus target
(`expr`) on the datasource uid "prometheus"; template variables appear only
inside regex matchers (`label=~"$var"`) and their "All" value is `.+`; the only
Grafana built-ins used are $__rate_interval and $__range.
"""

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
JOB = 'job="nexa"'
RI = "$__rate_interval"

# Burn-rate factors of the SLO alerts (observability/prometheus/rules/slo.yml).
BURN_THRESHOLDS = [(None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")]


# --- panels -----------------------------------------------------------------


def target(expr, legend="", ref="A"):
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
        "refId": ref,
    }


def targets(*pairs):
    """(expr, legend) pairs as targets A, B, C..."""
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(pairs)]


def thresholds(steps):
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def panel(kind, title, description, tgts, unit, w, h, **extra):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": tgts,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": thresholds(extra.pop("steps", [(None, "green")])),
            },
            "overrides": [],
        },
        "gridPos": {"w": w, "h": h},
    }
    defaults = p["fieldConfig"]["defaults"]
    if "min" in extra:
        defaults["min"] = extra.pop("min")
    if "max" in extra:
        defaults["max"] = extra.pop("max")
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": extra.pop("threshold_style", "off")},
        }
        defaults["color"] = {"mode": "palette-classic"}
        p["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        p["options"] = {
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    assert not extra, extra
    return p


def ts(title, description, tgts, unit="short", w=12, h=8, **extra):
    return panel("timeseries", title, description, tgts, unit, w, h, **extra)


def stat(title, description, tgts, unit="short", w=6, h=4, **extra):
    return panel("stat", title, description, tgts, unit, w, h, **extra)


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


# --- dashboards ---------------------------------------------------------------


def variable(name, label, metric):
    query = f"label_values({metric}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "includeAll": True,
        "allValue": ".+",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def layout(panels):
    """Assigns ids and grid positions: left to right, wrapping at 24 columns."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        pos = p["gridPos"]
        if p["type"] == "row" or x + pos["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        pos["x"], pos["y"] = x, y
        x += pos["w"]
        row_h = max(row_h, pos["h"])
        if p["type"] == "row":
            x, y, row_h = 0, y + pos["h"], 0
    return panels


def dashboard(uid, title, description, panels, variables=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["nexa"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "links": [
            {
                "type": "dashboards",
                "tags": ["nexa"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "title": "Nexa dashboards",
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": list(variables)},
        "panels": layout(panels),
    }


def red():
    sel = f'{JOB}, component=~"$component"'
    requests = f"http_server_requests_total{{{sel}}}"
    buckets = f"http_server_request_duration_seconds_bucket{{{sel}}}"
    fivexx = f'http_server_requests_total{{{sel}, status_class="5xx"}}'
    panels = [
        stat("Requests", "Requests per second answered by the host.",
             targets((f"sum(rate({requests}[{RI}]))", "requests/s")), "reqps"),
        stat("5xx share", "Share of answers that were 5xx (0 when there were none).",
             targets((f"(sum(rate({fivexx}[{RI}])) or vector(0)) / sum(rate({requests}[{RI}]))", "5xx")),
             "percentunit", steps=[(None, "green"), (0.001, "orange"), (0.01, "red")]),
        stat("p99 latency", "99th percentile of request duration, from the histogram buckets.",
             targets((f"histogram_quantile(0.99, sum by (le) (rate({buckets}[{RI}])))", "p99")), "s"),
        stat("In flight", "Requests being handled right now (all components).",
             targets((f"sum(http_server_active_requests{{{JOB}}})", "in flight"))),
        ts("Requests by route and method",
           "Per spin.toml route template (never the raw path) and method.",
           targets((f"sum by (route, method) (rate({requests}[{RI}]))", "{{method}} {{route}}")), "reqps"),
        ts("Answers by status class", "1xx..5xx per second.",
           targets((f"sum by (status_class) (rate({requests}[{RI}]))", "{{status_class}}")), "reqps"),
        ts("5xx share by component", "0 for a component that answered no 5xx.",
           targets((f"(sum by (component) (rate({fivexx}[{RI}])) or 0 * sum by (component) (rate({requests}[{RI}])))"
                    f" / sum by (component) (rate({requests}[{RI}]))", "{{component}}")),
           "percentunit", min=0),
        ts("Client and server errors by route", "4xx and 5xx answers per second, by route.",
           targets((f'sum by (route, status_class) (rate(http_server_requests_total{{{sel}, status_class=~"4xx|5xx"}}[{RI}]))',
                    "{{status_class}} {{route}}")), "reqps"),
        ts("Latency by component", "p50, p90 and p99 of request duration per component.",
           targets(*[(f"histogram_quantile({q}, sum by (component, le) (rate({buckets}[{RI}])))",
                      f"{{{{component}}}} p{int(q * 100)}") for q in (0.5, 0.9, 0.99)]), "s"),
        ts("p99 latency by route", "99th percentile of request duration per route.",
           targets((f"histogram_quantile(0.99, sum by (route, le) (rate({buckets}[{RI}])))", "{{route}}")), "s"),
        ts("In-flight requests by host", "http_server_active_requests per host.",
           targets((f"sum by (instance) (http_server_active_requests{{{JOB}}})", "{{instance}}")), "short", w=24),
    ]
    return dashboard(
        "nexa-red", "Nexa / RED overview",
        "Rate, errors and duration of the host's HTTP answers, per route and component.",
        panels, [variable("component", "Component", f"http_server_requests_total{{{JOB}}}")])


def components():
    sel = f'{JOB}, component=~"$component"'
    panels = [
        stat("Live instances", "Component instances alive now (serving or pooled).",
             targets((f"sum(component_live_instances{{{sel}}})", "instances"))),
        stat("Traps in range", "Instances ended by a trap, the deadline or the memory limit in the selected range.",
             targets((f"sum(increase(component_traps_total{{{sel}}}[$__range]))", "traps")),
             steps=[(None, "green"), (1, "red")]),
        stat("Artifact cache", "Precompiled-artifact cache hits and misses since the host started.",
             targets((f"sum(artifact_cache_hits_total{{{JOB}}})", "hits"),
                     (f"sum(artifact_cache_misses_total{{{JOB}}})", "misses"))),
        stat("Compilation", "Components compiled since the host started and the seconds it took.",
             targets((f"sum(component_compile_seconds_count{{{JOB}}})", "compiled"),
                     (f"sum(component_compile_seconds_sum{{{JOB}}})", "seconds"))),
        ts("Instantiations", "New component instances per second.",
           targets((f"sum by (component) (rate(component_instantiations_total{{{sel}}}[{RI}]))", "{{component}}")), "ops"),
        ts("Live instances by component", "component_live_instances.",
           targets((f"sum by (component) (component_live_instances{{{sel}}})", "{{component}}"))),
        ts("Requests per instantiation",
           "Requests answered per instance created, since the host started: how much instance reuse saves.",
           targets((f"sum by (component) (http_server_requests_total{{{sel}}})"
                    f" / sum by (component) (component_instantiations_total{{{sel}}})", "{{component}}"))),
        ts("Traps by component and kind", "trap, deadline (504) or memory; each retires its instance.",
           targets((f"sum by (component, kind) (increase(component_traps_total{{{sel}}}[{RI}]))", "{{component}} {{kind}}"))),
    ]
    return dashboard(
        "nexa-components", "Nexa / Components and instances",
        "Instances, reuse, traps, compilation and the artifact cache.",
        panels, [variable("component", "Component", f"component_instantiations_total{{{JOB}}}")])


def capabilities():
    sel = f'{JOB}, capability=~"$capability"'
    calls = f"capability_calls_total{{{sel}}}"
    buckets = f"capability_call_duration_seconds_bucket{{{sel}}}"
    lookups = f"key_value_lookups_total{{{JOB}}}"
    pool = f"postgres_pool_connections{{{JOB}}}"
    panels = [
        ts("Calls by capability and operation", "Host calls per second, recorded once per call.",
           targets((f"sum by (capability, op) (rate({calls}[{RI}]))", "{{capability}} {{op}}")), "ops"),
        ts("Failed calls by capability and operation",
           "Share of calls that returned the interface's error or trapped (0 when none did).",
           targets((f'(sum by (capability, op) (rate(capability_calls_total{{{sel}, result!="ok"}}[{RI}]))'
                    f" or 0 * sum by (capability, op) (rate({calls}[{RI}])))"
                    f" / sum by (capability, op) (rate({calls}[{RI}]))", "{{capability}} {{op}}")),
           "percentunit", min=0),
        ts("Call latency p50", "Median duration of a host call.",
           targets((f"histogram_quantile(0.5, sum by (capability, op, le) (rate({buckets}[{RI}])))", "{{capability}} {{op}}")), "s"),
        ts("Call latency p99", "99th percentile duration of a host call.",
           targets((f"histogram_quantile(0.99, sum by (capability, op, le) (rate({buckets}[{RI}])))", "{{capability}} {{op}}")), "s"),
        stat("Key-value hit ratio", "Share of key-value lookups that found the key.",
             targets((f'(sum(rate(key_value_lookups_total{{{JOB}, result="hit"}}[{RI}])) or vector(0))'
                      f" / sum(rate({lookups}[{RI}]))", "hits")), "percentunit"),
        stat("Postgres pool in use", "Share of the pool's open connections in use.",
             targets((f'sum(postgres_pool_connections{{{JOB}, state="used"}}) / sum({pool})', "used")),
             "percentunit", steps=[(None, "green"), (0.9, "red")]),
        stat("Postgres acquire p99", "99th percentile of the time to get a pooled connection.",
             targets((f"histogram_quantile(0.99, sum by (le) (rate(postgres_pool_acquire_seconds_bucket{{{JOB}}}[{RI}])))", "p99")), "s"),
        stat("Redis connections up", "Addresses whose shared connection is up, of all the host uses.",
             targets((f"sum(redis_connection_up{{{JOB}}})", "up"), (f"count(redis_connection_up{{{JOB}}})", "addresses"))),
        ts("Key-value lookups", "Lookups per second by result.",
           targets((f"sum by (result) (rate({lookups}[{RI}]))", "{{result}}")), "ops"),
        ts("Postgres pool connections", "Open connections by state.",
           targets((f"sum by (state) ({pool})", "{{state}}"))),
        ts("Postgres acquire time", "Mean and p99 time to get a pooled connection.",
           targets((f"sum(rate(postgres_pool_acquire_seconds_sum{{{JOB}}}[{RI}])) / sum(rate(postgres_pool_acquire_seconds_count{{{JOB}}}[{RI}]))", "mean"),
                   (f"histogram_quantile(0.99, sum by (le) (rate(postgres_pool_acquire_seconds_bucket{{{JOB}}}[{RI}])))", "p99")), "s"),
        ts("Redis connection", "1 while the shared connection to an address is up.",
           targets((f"max by (address) (redis_connection_up{{{JOB}}})", "{{address}}")), min=0, max=1),
    ]
    return dashboard(
        "nexa-capabilities", "Nexa / Capabilities",
        "Host calls by capability and operation; key-value, Postgres pool and Redis.",
        panels, [variable("capability", "Capability", f"capability_calls_total{{{JOB}}}")])


def rate_limiting():
    requests = f"http_server_requests_total{{{JOB}}}"
    panels = [
        stat("Rate limited", "Share of requests answered 429 by the rate limiter.",
             targets((f"(sum(rate(rate_limited_total{{{JOB}}}[{RI}])) or vector(0)) / sum(rate({requests}[{RI}]))", "limited")),
             "percentunit"),
        stat("Shed", "Share of requests answered 503 by load shedding.",
             targets((f"(sum(rate(requests_shed_total{{{JOB}}}[{RI}])) or vector(0)) / sum(rate({requests}[{RI}]))", "shed")),
             "percentunit", steps=[(None, "green"), (0.001, "orange"), (0.01, "red")]),
        stat("Redis fallbacks in range", "Rate-limit decisions made in-process because Redis was unreachable.",
             targets((f"sum(increase(rate_limit_redis_fallbacks_total{{{JOB}}}[$__range]))", "fallbacks")),
             steps=[(None, "green"), (1, "orange")]),
        stat("In flight", "Requests being handled right now.",
             targets((f"sum(http_server_active_requests{{{JOB}}})", "in flight"))),
        ts("Rate limited by class", "429 answers per second by class: login, register, write, read.",
           targets((f"sum by (class) (rate(rate_limited_total{{{JOB}}}[{RI}]))", "{{class}}")), "reqps"),
        ts("Shed by reason", "503 answers per second by reason: overloaded, connections, timeout.",
           targets((f"sum by (reason) (rate(requests_shed_total{{{JOB}}}[{RI}]))", "{{reason}}")), "reqps"),
        ts("Redis fallbacks", "Rate-limit decisions per second made without Redis.",
           targets((f"sum(rate(rate_limit_redis_fallbacks_total{{{JOB}}}[{RI}]))", "fallbacks")), "ops"),
        ts("Requests and in flight", "All requests per second, and requests in flight.",
           targets((f"sum(rate({requests}[{RI}]))", "requests/s"),
                   (f"sum(http_server_active_requests{{{JOB}}})", "in flight"))),
    ]
    return dashboard(
        "nexa-rate-limiting", "Nexa / Rate limiting and shedding",
        "Requests refused before a component ran: rate limited (429) and shed (503).",
        panels)


def slo():
    c = 'component=~"$component"'

    def budget(kind):
        return (f"1 - component:slo_{kind}_errors:ratio_rate30d{{{c}}}"
                f" / on (component) (1 - component:slo_{kind}_objective:ratio{{{c}}})")

    def burn(kind, window):
        return (f"component:slo_{kind}_errors:ratio_rate{window}{{{c}}}"
                f" / on (component) (1 - component:slo_{kind}_objective:ratio{{{c}}})",
                f"{{{{component}}}} {window}")

    budget_steps = [(None, "red"), (0, "orange"), (0.25, "green")]
    panels = [row("Availability: answers that are not 5xx")]
    panels += [
        stat("Objective", "Availability objective per component (slo.yml).",
             targets((f"component:slo_availability_objective:ratio{{{c}}}", "{{component}}")), "percentunit"),
        stat("Availability, 30 days", "Share of non-5xx answers over 30 days.",
             targets((f"1 - component:slo_availability_errors:ratio_rate30d{{{c}}}", "{{component}}")), "percentunit"),
        stat("Error budget left, 30 days", "1 - errors / budget: below 0 the SLO is missed.",
             targets((budget("availability"), "{{component}}")), "percentunit", steps=budget_steps),
        stat("Availability, 1 hour", "Share of non-5xx answers over the last hour.",
             targets((f"1 - component:slo_availability_errors:ratio_rate1h{{{c}}}", "{{component}}")), "percentunit"),
        ts("Availability burn rate",
           "Error ratio / budget per window. 1 spends the budget in exactly 30 days; the alerts "
           "page at 14.4 (1h and 5m) and 6 (6h and 30m), open a ticket at 3 (1d and 2h) and 1 (3d and 6h).",
           targets(*[burn("availability", w) for w in ("5m", "1h", "6h", "3d")]),
           w=24, threshold_style="line", steps=BURN_THRESHOLDS),
    ]
    panels.append(row("Latency: requests within the component's threshold"))
    panels += [
        stat("Threshold", "Latency threshold per component; the objective is 99 % within it.",
             targets((f"component:slo_latency_threshold:seconds{{{c}}}", "{{component}}")), "s"),
        stat("Within threshold, 30 days", "Share of requests within the threshold over 30 days.",
             targets((f"1 - component:slo_latency_errors:ratio_rate30d{{{c}}}", "{{component}}")), "percentunit"),
        stat("Error budget left, 30 days", "1 - slow requests / budget: below 0 the SLO is missed.",
             targets((budget("latency"), "{{component}}")), "percentunit", steps=budget_steps),
        stat("Within threshold, 1 hour", "Share of requests within the threshold over the last hour.",
             targets((f"1 - component:slo_latency_errors:ratio_rate1h{{{c}}}", "{{component}}")), "percentunit"),
        ts("Latency burn rate", "Slow-request ratio / budget per window; thresholds as for availability.",
           targets(*[burn("latency", w) for w in ("5m", "1h", "6h", "3d")]),
           w=24, threshold_style="line", steps=BURN_THRESHOLDS),
    ]
    return dashboard(
        "nexa-slo", "Nexa / SLOs",
        "Availability and latency SLOs of health, items and auth: compliance, error budget and "
        "burn rates, from the recording rules in observability/prometheus/rules/slo.yml.",
        panels, [variable("component", "Component", "component:slo_availability_objective:ratio")])


DASHBOARDS = [red, components, capabilities, rate_limiting, slo]


def render():
    """{file name: JSON text} for every dashboard."""
    out = {}
    for build in DASHBOARDS:
        d = build()
        out[f"{d['uid']}.json"] = json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a dashboard file differs from what this script makes")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output directory (default {OUT})")
    args = parser.parse_args(argv)
    rendered = render()
    stale = []
    for name, text in rendered.items():
        path = args.out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in rendered) if args.out.exists() else []
    if args.check and (stale or extra):
        for name in stale:
            print(f"{args.out / name}: differs from build_dashboards.py's output; run it and commit the result",
                  file=sys.stderr)
        for name in extra:
            print(f"{args.out / name}: not made by build_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
