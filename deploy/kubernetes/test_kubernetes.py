"""Invariants of the Kubernetes deployment, checked without a cluster.

Every kustomization (base, overlays/development, overlays/production,
spinkube) is rendered with `kubectl kustomize`; the built-in objects must pass
`kubernetes-validate --strict` for Kubernetes 1.30, and the custom resources
(SpinKube's SpinApp, the Prometheus Operator's ServiceMonitor), which it has
no schema for, are checked field by field here. Then the host's Deployment
and what surrounds it are checked: replicas, probes, security context,
resources, spreading, disruption budget, autoscaler, network policy, graceful
shutdown, configuration and secrets.

Run from the repository root: python3 -m unittest discover -s deploy/kubernetes
"""

import re
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KUBERNETES_VERSION = "1.30.0"
KUSTOMIZATIONS = {
    "base": HERE / "base",
    "development": HERE / "overlays" / "development",
    "production": HERE / "overlays" / "production",
    "spinkube": HERE / "spinkube",
}
# The renders that deploy the nexa host.
HOST_RENDERS = ("base", "development", "production")
SECRET_TEMPLATE = HERE / "secret.example.yaml"
CUSTOM_RESOURCES = {
    ("core.spinkube.dev/v1alpha1", "SpinApp"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
ADMIN_PORT = 9464
HTTP_PORT = 3000
HOST_UID = 65532
MONITORING_NAMESPACE = "monitoring"
EGRESS_PORTS = {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379), ("TCP", 4317)}
# Environment variables of the host that carry secrets: never a literal value.
SECRET_ENV = {
    "SPIN_VARIABLE_DATABASE_URL",
    "SPIN_VARIABLE_JWT_SECRET",
    "SPIN_VARIABLE_ADMIN_PASSWORD",
    "NEXA_ADMIN_TOKEN",
    "NEXA_RATE_LIMIT_REDIS_URL",
}
SPINAPP_FIELDS = {
    "image", "executor", "replicas", "enableAutoscaling", "variables", "runtimeConfig", "checks",
    "resources", "components", "podAnnotations", "podLabels", "deploymentAnnotations",
    "serviceAnnotations", "imagePullSecrets", "volumes", "volumeMounts",
}


def kustomize(path):
    result = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def quantity(value):
    """A Kubernetes quantity (`250m`, `2`, `512Mi`) as a number."""
    suffixes = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?", str(value))
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * suffixes[match.group(2) or ""]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def spin_variables():
    return tomllib.loads((ROOT / "spin.toml").read_text())["variables"]


def secret_template():
    """{secret name: {key: value}} of the template."""
    return {
        doc["metadata"]["name"]: doc["stringData"]
        for doc in yaml.safe_load_all(SECRET_TEMPLATE.read_text())
        if doc
    }


class Render:
    """One rendered kustomization, with lookups."""

    def __init__(self, name, docs):
        self.name = name
        self.docs = docs

    def all(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, name=None):
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        if len(found) != 1:
            raise AssertionError(f"{self.name}: expected one {kind} {name or ''}, found {len(found)}")
        return found[0]

    @property
    def deployment(self):
        return self.one("Deployment", "nexa")

    @property
    def pod(self):
        return self.deployment["spec"]["template"]

    @property
    def pod_labels(self):
        return self.pod["metadata"]["labels"]

    @property
    def container(self):
        (container,) = [c for c in self.pod["spec"]["containers"] if c["name"] == "nexa"]
        return container

    def port(self, port):
        """A container port, by number or name."""
        if isinstance(port, int):
            return port
        (number,) = [p["containerPort"] for p in self.container["ports"] if p["name"] == port]
        return number

    @property
    def env(self):
        return {e["name"]: e for e in self.container.get("env", [])}

    def host_config(self):
        """nexa.toml from the rendered ConfigMap."""
        return tomllib.loads(self.config_map()["data"]["nexa.toml"])

    def config_map(self):
        (volume,) = [v for v in self.pod["spec"]["volumes"] if v["name"] == "config"]
        return self.one("ConfigMap", volume["configMap"]["name"])


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.renders = {name: Render(name, kustomize(path)) for name, path in KUSTOMIZATIONS.items()}

    def hosts(self):
        return [self.renders[name] for name in HOST_RENDERS]

    # --- what kubernetes-validate and the custom resources need ------------

    def test_built_in_objects_pass_kubernetes_validate_strict(self):
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for name, render in self.renders.items():
                docs = [d for d in render.docs if (d["apiVersion"], d["kind"]) not in CUSTOM_RESOURCES]
                if docs:
                    files[name] = Path(tmp) / f"{name}.yaml"
                    files[name].write_text(yaml.safe_dump_all(docs))
            files["secret template"] = SECRET_TEMPLATE
            for name, path in files.items():
                with self.subTest(render=name):
                    result = subprocess.run(
                        ["kubernetes-validate", "-k", KUBERNETES_VERSION, "--strict", "--quiet", str(path)],
                        capture_output=True, text=True, timeout=120,
                    )
                    output = result.stdout + result.stderr
                    self.assertEqual(result.returncode, 0, output)
                    self.assertNotRegex(output, r"ERROR|WARN", output)

    def test_only_known_custom_resources(self):
        known_groups = {"v1", "apps/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1"}
        for name, render in self.renders.items():
            for doc in render.docs:
                with self.subTest(render=name, kind=doc["kind"]):
                    self.assertTrue(
                        doc["apiVersion"] in known_groups or (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES,
                        f"{doc['apiVersion']} {doc['kind']} is neither validated nor checked here",
                    )

    def test_the_spin_app_has_its_required_fields(self):
        render = self.renders["spinkube"]
        app = render.one("SpinApp")
        spec = app["spec"]
        self.assertEqual(app["apiVersion"], "core.spinkube.dev/v1alpha1")
        self.assertTrue(app["metadata"].get("name"))
        self.assertLessEqual(set(spec), SPINAPP_FIELDS)
        self.assertRegex(spec["image"], r"^[a-z0-9.-]+(:\d+)?/[a-z0-9./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$")
        self.assertNotRegex(spec["image"], r":latest$")
        self.assertEqual(spec["executor"], "containerd-shim-spin")
        self.assertIsInstance(spec["replicas"], int)
        self.assertGreaterEqual(spec["replicas"], 3)
        self.assertFalse(spec.get("enableAutoscaling", False), "replicas cannot be set with enableAutoscaling")
        for probe in ("readiness", "liveness"):
            self.assertTrue(spec["checks"][probe]["httpGet"]["path"].startswith("/"))
        # /health probes the database: not a liveness check.
        self.assertNotEqual(spec["checks"]["liveness"]["httpGet"]["path"], "/health")
        for kind in ("requests", "limits"):
            self.assertEqual(set(spec["resources"][kind]), {"cpu", "memory"})

    def test_the_spin_app_binds_spin_toml_variables_from_the_secrets(self):
        spec = self.renders["spinkube"].one("SpinApp")["spec"]
        declared = spin_variables()
        template = secret_template()
        bound = set()
        for variable in spec["variables"]:
            with self.subTest(variable=variable.get("name")):
                self.assertIn(variable["name"], declared)
                self.assertEqual(len({"value", "valueFrom"} & set(variable)), 1)
                if "valueFrom" in variable:
                    ref = variable["valueFrom"]["secretKeyRef"]
                    self.assertIn(ref["key"], template.get(ref["name"], {}))
                elif declared[variable["name"]].get("secret"):
                    self.fail("a secret variable with a literal value")
                bound.add(variable["name"])
        required = {n for n, d in declared.items() if d.get("required")}
        self.assertEqual(required - bound, set())
        # runtimeConfig.loadFromSecret: a Secret with the one key runtime-config.toml.
        self.assertEqual(list(template[spec["runtimeConfig"]["loadFromSecret"]]), ["runtime-config.toml"])

    def test_the_service_monitor_scrapes_the_admin_port(self):
        render = self.renders["production"]
        monitor = render.one("ServiceMonitor")
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        spec = monitor["spec"]
        services = [s for s in render.all("Service") if selects(spec["selector"]["matchLabels"], s["metadata"]["labels"])]
        self.assertEqual(len(services), 1)
        (service,) = services
        self.assertTrue(spec["endpoints"])
        for endpoint in spec["endpoints"]:
            (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
            self.assertEqual(render.port(port["targetPort"]), ADMIN_PORT)
            self.assertEqual(endpoint.get("path", "/metrics"), "/metrics")
        self.assertTrue(selects(service["spec"]["selector"], render.pod_labels))

    # --- the host's Deployment and its companions --------------------------

    def test_replicas_and_autoscaling(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                self.assertGreaterEqual(render.deployment["spec"]["replicas"], 3)
                hpa = render.one("HorizontalPodAutoscaler")
                self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
                self.assertEqual(hpa["spec"]["scaleTargetRef"], {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nexa"})
                self.assertGreaterEqual(hpa["spec"]["minReplicas"], 3)
                self.assertGreater(hpa["spec"]["maxReplicas"], hpa["spec"]["minReplicas"])
                self.assertTrue(hpa["spec"]["metrics"])
                self.assertEqual(render.deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)

    def test_probes_use_the_admin_listener_and_liveness_needs_no_database(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                container = render.container
                for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez"), ("startupProbe", "/livez")):
                    get = container[probe]["httpGet"]
                    self.assertEqual((get["path"], render.port(get["port"])), (path, ADMIN_PORT), probe)
                # /readyz and /health answer 503 when Postgres or Redis do not:
                # a liveness check on them would restart every pod in an outage.
                self.assertNotIn(container["livenessProbe"]["httpGet"]["path"], ("/readyz", "/health"))
                startup = container["startupProbe"]
                self.assertGreaterEqual(startup["periodSeconds"] * startup["failureThreshold"], 120, "too little time for the first compile")

    def test_runs_as_non_root_with_a_read_only_root_filesystem(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                pod = render.pod["spec"]
                self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
                self.assertEqual(pod["securityContext"]["runAsUser"], HOST_UID)
                self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertIs(pod.get("automountServiceAccountToken"), False)
                self.assertFalse(pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"))
                context = render.container["securityContext"]
                self.assertIs(context["runAsNonRoot"], True)
                self.assertEqual(context["runAsUser"], HOST_UID)
                self.assertIs(context["allowPrivilegeEscalation"], False)
                self.assertIs(context["readOnlyRootFilesystem"], True)
                self.assertEqual(context["capabilities"], {"drop": ["ALL"]})
                self.assertEqual(context["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertFalse(context.get("privileged", False))

    def test_namespaces_enforce_the_restricted_pod_security_standard(self):
        for name in ("development", "production"):
            with self.subTest(render=name):
                render = self.renders[name]
                namespace = render.one("Namespace")
                self.assertEqual(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted")
                namespaced = [d for d in render.docs if d["kind"] != "Namespace"]
                self.assertEqual({d["metadata"].get("namespace") for d in namespaced}, {namespace["metadata"]["name"]})

    def test_resources_are_requested_and_limited(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                resources = render.container["resources"]
                for resource in ("cpu", "memory"):
                    request = quantity(resources["requests"][resource])
                    limit = quantity(resources["limits"][resource])
                    self.assertGreater(request, 0)
                    self.assertLessEqual(request, limit)

    def test_replicas_spread_over_nodes_and_zones(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                constraints = {c["topologyKey"]: c for c in render.pod["spec"]["topologySpreadConstraints"]}
                self.assertEqual(set(constraints), {"kubernetes.io/hostname", "topology.kubernetes.io/zone"})
                for constraint in constraints.values():
                    self.assertTrue(selects(constraint["labelSelector"]["matchLabels"], render.pod_labels))
                    self.assertEqual(constraint["maxSkew"], 1)
                if render.name == "production":
                    self.assertEqual(constraints["kubernetes.io/hostname"]["whenUnsatisfiable"], "DoNotSchedule")

    def test_the_disruption_budget_keeps_replicas_up(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                pdb = render.one("PodDisruptionBudget")
                self.assertEqual(pdb["apiVersion"], "policy/v1")
                self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"], render.pod_labels))
                minimum = render.one("HorizontalPodAutoscaler")["spec"]["minReplicas"]
                if "maxUnavailable" in pdb["spec"]:
                    self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
                else:
                    self.assertTrue(0 < pdb["spec"]["minAvailable"] < minimum)

    def test_the_network_policy_admits_only_what_the_host_needs(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                policy = render.one("NetworkPolicy")["spec"]
                self.assertTrue(selects(policy["podSelector"]["matchLabels"], render.pod_labels))
                self.assertEqual(sorted(policy["policyTypes"]), ["Egress", "Ingress"])
                ingress = {}
                for rule in policy["ingress"]:
                    self.assertTrue(rule.get("from"), "a rule without `from` admits the whole world")
                    self.assertTrue(rule.get("ports"), "a rule without `ports` admits every port")
                    for port in rule["ports"]:
                        ingress[render.port(port["port"])] = rule["from"]
                self.assertEqual(set(ingress), {HTTP_PORT, ADMIN_PORT})
                self.assertEqual(ingress[HTTP_PORT], [{"namespaceSelector": {}}])
                self.assertEqual(
                    ingress[ADMIN_PORT],
                    [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}],
                )
                egress = set()
                for rule in policy["egress"]:
                    self.assertTrue(rule.get("ports"), "an egress rule without `ports` opens every port")
                    egress |= {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
                self.assertEqual(egress, EGRESS_PORTS)
                # The OTLP endpoint is one the policy lets out.
                endpoint = urlsplit(render.env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"])
                self.assertIn(("TCP", endpoint.port), egress)
                self.assertEqual(render.env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"], "grpc")

    def test_shutdown_fits_in_the_termination_grace_period(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                pre_stop = render.container["lifecycle"]["preStop"]
                self.assertEqual(set(pre_stop), {"sleep"}, "no shell in the image: only the sleep action works")
                sleep = pre_stop["sleep"]["seconds"]
                self.assertGreater(sleep, 0)
                config = render.host_config()
                shutdown = (config.get("shutdown_grace_ms", 10_000) + config.get("trace_shutdown_timeout_ms", 2_000)) / 1000
                grace = render.pod["spec"]["terminationGracePeriodSeconds"]
                self.assertGreater(grace, sleep + shutdown)
                self.assertGreater(grace, sleep + 10)

    def test_listeners_bind_every_interface_of_the_pod(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                self.assertEqual(render.env["SPIN_HTTP_LISTEN_ADDR"]["value"], f"0.0.0.0:{HTTP_PORT}")
                self.assertEqual(render.env["NEXA_ADMIN_LISTEN"]["value"], f"0.0.0.0:{ADMIN_PORT}")
                self.assertEqual({render.port("http"), render.port("metrics")}, {HTTP_PORT, ADMIN_PORT})

    def test_services_separate_the_api_from_the_admin_listener(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                by_port = {}
                for service in render.all("Service"):
                    self.assertTrue(selects(service["spec"]["selector"], render.pod_labels))
                    ports = {render.port(p["targetPort"]) for p in service["spec"]["ports"]}
                    self.assertEqual(len(ports), 1, f"{service['metadata']['name']} mixes ports")
                    by_port[ports.pop()] = service
                self.assertEqual(set(by_port), {HTTP_PORT, ADMIN_PORT})
                self.assertEqual(by_port[HTTP_PORT]["metadata"]["name"], "nexa")

    def test_metrics_are_scraped(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                if render.name == "base":
                    continue
                annotations = render.pod["metadata"].get("annotations", {})
                if render.name == "production":
                    render.one("ServiceMonitor")
                    self.assertNotIn("prometheus.io/scrape", annotations, "scraped twice")
                else:
                    self.assertEqual(annotations.get("prometheus.io/scrape"), "true")
                    self.assertEqual(int(annotations["prometheus.io/port"]), ADMIN_PORT)

    def test_spin_toml_and_nexa_toml_come_from_the_config_map(self):
        repository_spin_toml = (ROOT / "spin.toml").read_text()
        repository_limits = tomllib.loads((ROOT / "nexa.toml").read_text()).get("component", {})
        for render in self.hosts():
            with self.subTest(render=render.name):
                data = render.config_map()["data"]
                self.assertEqual(
                    data["spin.toml"], repository_spin_toml,
                    "deploy/kubernetes/base/config/spin.toml differs from spin.toml: cp spin.toml deploy/kubernetes/base/config/",
                )
                mounts = {m["mountPath"]: m for m in render.container["volumeMounts"]}
                for name in ("spin.toml", "nexa.toml"):
                    mount = mounts[f"/app/{name}"]
                    self.assertEqual((mount["name"], mount.get("subPath")), ("config", name))
                args = render.container["args"]
                self.assertEqual(args[args.index("--from") + 1], "/app/spin.toml")
                # Sources are relative to spin.toml: /app/components/<name>/<name>.wasm,
                # where the image has them.
                for component in tomllib.loads(data["spin.toml"])["component"].values():
                    self.assertRegex(component["source"], r"^components/([^/]+)/\1\.wasm$")
                self.assertEqual(render.host_config().get("component", {}), repository_limits)

    def test_state_dir_and_tmp_are_empty_dirs(self):
        for render in self.hosts():
            with self.subTest(render=render.name):
                args = render.container["args"]
                volumes = {v["name"]: v for v in render.pod["spec"]["volumes"]}
                mounts = {m["mountPath"]: m["name"] for m in render.container["volumeMounts"]}
                for path in (args[args.index("--state-dir") + 1], "/tmp"):
                    self.assertIn("emptyDir", volumes[mounts[path]], path)

    def test_secrets_come_from_secret_references(self):
        template = secret_template()
        declared = spin_variables()
        for render in self.hosts():
            with self.subTest(render=render.name):
                env = render.env
                for name in SECRET_ENV:
                    self.assertNotIn("value", env[name], name)
                for name, entry in env.items():
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        self.assertIn(ref["key"], template.get(ref["name"], {}), name)
                    if name.startswith("SPIN_VARIABLE_"):
                        self.assertIn(name.removeprefix("SPIN_VARIABLE_").lower(), declared, name)
                required = {f"SPIN_VARIABLE_{n.upper()}" for n, d in declared.items() if d.get("required")}
                self.assertEqual(required - set(env), set())
                # The runtime config (Redis password inside) is the Secret's file.
                volumes = {v["name"]: v for v in render.pod["spec"]["volumes"]}
                (mount,) = [
                    m for m in render.container["volumeMounts"]
                    if "secret" in volumes[m["name"]]
                ]
                secret = volumes[mount["name"]]["secret"]
                (item,) = secret["items"]
                self.assertIn(item["key"], template[secret["secretName"]])
                self.assertEqual(env["NEXA_RUNTIME_CONFIG_FILE"]["value"], f"{mount['mountPath']}/{item['path']}")
                # No Secret is deployed by a kustomization: placeholders never
                # overwrite real values.
                self.assertEqual(render.all("Secret"), [])

    def test_the_secret_template_holds_placeholders_only(self):
        template = secret_template()
        values = template["nexa-secrets"]
        for key, value in values.items():
            with self.subTest(key=key):
                if key not in ("db-host", "db-port"):
                    self.assertIn("CHANGE-ME", value)
        url = urlsplit(values["database-url"])
        self.assertEqual((url.scheme, url.hostname, str(url.port)), ("postgres", values["db-host"], values["db-port"]))
        runtime = tomllib.loads(template["nexa-runtime-config"]["runtime-config.toml"])
        self.assertEqual(runtime["key_value_store"]["default"]["type"], "redis")
        self.assertIn("CHANGE-ME", runtime["key_value_store"]["default"]["url"])
        self.assertNotIn("variables_provider", runtime)
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "deploy/kubernetes/secret.yaml"])
        self.assertEqual(ignored.returncode, 0, "deploy/kubernetes/secret.yaml is not ignored by git")
        for path in HERE.rglob("kustomization.yaml"):
            kustomization = yaml.safe_load(path.read_text())
            with self.subTest(kustomization=str(path.relative_to(HERE))):
                self.assertNotIn("secretGenerator", kustomization)
                self.assertEqual([r for r in kustomization.get("resources", []) if "secret" in r], [])

    def test_images_are_set_by_the_overlays(self):
        images = {name: self.renders[name].container["image"] for name in HOST_RENDERS}
        self.assertEqual(images["development"], "nexa:local")
        self.assertRegex(images["production"], r"^[a-z0-9.-]+/[a-z0-9./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$")
        self.assertNotRegex(images["production"], r":latest$")


if __name__ == "__main__":
    unittest.main()
