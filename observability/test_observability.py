"""Unit tests of check_queries.py and the committed dashboards (standard library only).

    python3 -m unittest discover -s observability

Hermetic except for one cross-check that runs `promtool check rules` when
promtool is installed. The queries themselves are evaluated against a real
Prometheus by the host's integration test, through check_queries.py.
"""

import contextlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import check_queries

HERE = Path(__file__).resolve().parent
RULE_FILES = sorted((HERE / "prometheus" / "rules").glob("*.yml"))
DASHBOARD_FILES = sorted((HERE / "grafana" / "dashboards").glob("*.json"))


def load_build_dashboards():
    spec = importlib.util.spec_from_file_location("build_dashboards", HERE / "grafana" / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RuleExpressions(unittest.TestCase):
    def test_the_yaml_forms_rule_files_use(self):
        text = """
groups:
  - name: g  # a comment
    rules:
      - record: plain:rule
        expr: sum(up)  # trailing comment
      - record: 'single:quoted'
        expr: 'up{job=''nexa''}'
      - record: "double:quoted"
        expr: "up{job=\\"nexa\\"}"
      - alert: Block
        expr: |
          up
            == 0

        for: 1m
        labels:
          severity: page
        annotations:
          description: "expr: not a rule key"
      - record: folded:rule
        expr: >-
          sum by (job)
          (up)
"""
        self.assertEqual(
            check_queries.rule_expressions(text),
            [
                ("record", "plain:rule", "sum(up)"),
                ("record", "single:quoted", "up{job='nexa'}"),
                ("record", "double:quoted", 'up{job="nexa"}'),
                ("alert", "Block", "up\n  == 0"),
                ("record", "folded:rule", "sum by (job) (up)"),
            ],
        )

    def test_an_expr_without_its_rule_is_refused(self):
        with self.assertRaises(ValueError):
            check_queries.rule_expressions("groups:\n  - name: g\n    rules:\n      - expr: up\n")

    def test_every_committed_rule_is_found(self):
        self.assertTrue(RULE_FILES)
        for path in RULE_FILES:
            text = path.read_text(encoding="utf-8")
            rules = check_queries.rule_expressions(text)
            keys = re.findall(r"(?m)^\s*-\s+(?:record|alert):", text)
            self.assertEqual(len(rules), len(keys), path)
            for kind, name, expr in rules:
                self.assertTrue(expr and expr.count("(") == expr.count(")"), (path, name, expr))

    @unittest.skipUnless(shutil.which("promtool"), "promtool is not installed")
    def test_the_same_rules_as_promtool(self):
        for path in RULE_FILES:
            out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=True)
            found = int(re.search(r"SUCCESS: (\d+) rules found", out.stdout + out.stderr).group(1))
            self.assertEqual(len(check_queries.rule_expressions(path.read_text(encoding="utf-8"))), found, path)


class Alerts(unittest.TestCase):
    def test_every_alert_has_a_severity_annotations_and_a_runbook_section(self):
        readme = (HERE / "README.md").read_text(encoding="utf-8")
        headings = set(re.findall(r"(?m)^### (\w+)$", readme))
        names = []
        for path in RULE_FILES:
            # Each alert's text runs to the next rule or group.
            for block in re.split(r"(?m)^\s*-\s+(?=record:|alert:|name:)", path.read_text(encoding="utf-8")):
                m = re.match(r"alert:\s*(\w+)", block)
                if not m:
                    continue
                name = m.group(1)
                names.append(name)
                self.assertRegex(block, r"\n\s+severity: (page|ticket)\n", name)
                self.assertRegex(block, r"\n\s+summary: \S", name)
                self.assertRegex(block, r"\n\s+description: \S", name)
                self.assertIn(f'runbook: "observability/README.md#{name.lower()}"', block, name)
                self.assertIn(name, headings, f"observability/README.md has no '### {name}' section")
        self.assertEqual(len(names), 10, names)
        self.assertEqual(sorted(headings), sorted(names), "a runbook section without its alert")


class Dashboards(unittest.TestCase):
    def test_the_committed_json_is_what_the_script_builds(self):
        build = load_build_dashboards()
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(build.main(["--check"]), 0, err.getvalue())
        self.assertEqual(len(DASHBOARD_FILES), len(build.DASHBOARDS))

    def test_the_script_is_deterministic(self):
        build = load_build_dashboards()
        self.assertEqual(build.render(), build.render())

    def test_every_panel_queries_the_prometheus_datasource(self):
        uids = set()
        for path in DASHBOARD_FILES:
            d = json.loads(path.read_text(encoding="utf-8"))
            self.assertNotIn(d["uid"], uids)
            uids.add(d["uid"])
            ids = [p["id"] for p in d["panels"]]
            self.assertEqual(len(ids), len(set(ids)), path)
            for p in d["panels"]:
                if p["type"] == "row":
                    continue
                self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "prometheus"}, (path, p["title"]))
                self.assertTrue(p["targets"], (path, p["title"]))
                for t in p["targets"]:
                    self.assertEqual(t["datasource"]["uid"], "prometheus", (path, p["title"]))
                    self.assertTrue(t["expr"].strip(), (path, p["title"]))
            for v in d["templating"]["list"]:
                self.assertEqual(v["allValue"], check_queries.VARIABLE_VALUE, (path, v["name"]))

    def test_template_variables_appear_only_in_regex_matchers(self):
        # So that replacing them with ".+" keeps the query's meaning.
        for path in DASHBOARD_FILES:
            for name, expr in check_queries.dashboard_expressions(path):
                for m in check_queries._VARIABLE.finditer(expr):
                    var = m.group(1) or m.group(2) or m.group(3)
                    if var in check_queries.BUILTINS:
                        self.assertEqual(expr[m.start() - 1], "[", (name, expr))
                    else:
                        self.assertTrue(expr[: m.start()].endswith('=~"'), (name, expr))

    def test_substitution(self):
        self.assertEqual(
            check_queries.substitute(
                'sum(rate(x{a=~"$a", b=~"${b}", c=~"${c:regex}", d=~"[[d]]"}[$__rate_interval]))'
                " + increase(y[$__range]) + increase(y[${__interval}])"
            ),
            'sum(rate(x{a=~".+", b=~".+", c=~".+", d=~".+"}[1m])) + increase(y[1h]) + increase(y[1m])',
        )

    def test_collect_finds_every_recording_rule_and_target(self):
        queries = check_queries.collect()
        rules = [q for q in queries if q.source == "rule"]
        panels = [q for q in queries if q.source == "dashboard"]
        records = sum(
            1 for p in RULE_FILES for k, _, _ in check_queries.rule_expressions(p.read_text(encoding="utf-8")) if k == "record"
        )
        targets = sum(len(check_queries.dashboard_expressions(p)) for p in DASHBOARD_FILES)
        self.assertEqual((len(rules), len(panels)), (records, targets))
        for q in queries:
            self.assertNotIn("$", q.expr, q)
            self.assertNotIn("[[", q.expr, q)


class FakePrometheus(BaseHTTPRequestHandler):
    """/api/v1/query: an error for queries containing "syntax(", no data for
    "missing" (or for everything during the first `empty_calls` calls), one sample
    otherwise."""

    empty_calls = 0

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        query = urllib.parse.parse_qs(self.rfile.read(length).decode())["query"][0]
        server = self.server
        server.calls += 1
        if "syntax(" in query:
            code, body = 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        elif "missing" in query or server.calls <= server.empty_calls:
            code, body = 200, {"status": "success", "data": {"resultType": "vector", "result": []}}
        else:
            sample = {"metric": {}, "value": [0, "1"]}
            code, body = 200, {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Checker(unittest.TestCase):
    def setUp(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
        self.server.calls = 0
        self.server.empty_calls = 0
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.dir = Path(tempfile.mkdtemp(prefix="obs-check-"))
        (self.dir / "dashboards").mkdir()
        (self.dir / "rules").mkdir()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir)

    def write(self, exprs, rule="sum(rate(up[5m]))"):
        panels = [{"title": f"p{i}", "type": "timeseries", "targets": [{"expr": e}]} for i, e in enumerate(exprs)]
        (self.dir / "dashboards" / "d.json").write_text(json.dumps({"title": "D", "panels": panels}))
        (self.dir / "rules" / "r.yml").write_text(
            f"groups:\n  - name: g\n    rules:\n      - record: r:up:rate5m\n        expr: {rule}\n"
            "      - alert: NeverQueried\n        expr: missing == 0\n"
        )

    def run_checker(self, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = check_queries.main(
                [self.url, "--dashboards", str(self.dir / "dashboards"), "--rules", str(self.dir / "rules"), *args]
            )
        return code, out.getvalue()

    def test_every_query_with_data_passes(self):
        self.write(['sum(rate(http_server_requests_total{component=~"$component"}[$__rate_interval]))'])
        code, out = self.run_checker()
        self.assertEqual(code, 0, out)
        self.assertIn('component=~".+"}[1m]', out)
        self.assertNotIn("NeverQueried", out)  # alert expressions are not checked

    def test_a_query_without_data_fails(self):
        self.write(["sum(missing_metric)", "sum(up)"])
        code, out = self.run_checker()
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r"EMPTY +dashboard D / p0")

    def test_allow_empty_matches_the_expression_or_the_name(self):
        self.write(["sum(missing_metric)"], rule="sum(missing_too)")
        self.assertEqual(self.run_checker("--allow-empty", "missing_metric")[0], 1)
        code, out = self.run_checker("--allow-empty", "missing_metric", "--allow-empty", "^r:up:")
        self.assertEqual(code, 0, out)
        self.assertIn("empty, allowed", out)

    def test_a_query_error_fails_even_when_empty_is_allowed(self):
        self.write(["sum(syntax(up)"])
        code, out = self.run_checker("--allow-empty", ".")
        self.assertEqual(code, 1, out)
        self.assertIn("bad_data: parse error", out)

    def test_wait_retries_until_there_is_data(self):
        self.write(["sum(up)"])
        self.server.empty_calls = 2  # both queries' first call
        self.assertEqual(self.run_checker()[0], 1)
        self.server.calls = 0
        code, out = self.run_checker("--wait", "10")
        self.assertEqual(code, 0, out)

    def test_an_unreachable_prometheus_fails(self):
        self.write(["sum(up)"])
        self.url = "http://127.0.0.1:1"
        code, out = self.run_checker()
        self.assertEqual(code, 1, out)
        self.assertIn("cannot query", out)


if __name__ == "__main__":
    unittest.main()
