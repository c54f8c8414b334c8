"""Invariants of the Compose deployment, checked without a Docker engine.

Every combination a user can start (compose.yaml alone, the production shape;
compose.yaml + compose.dev.yaml; each with and without the `spin` profile) is
rendered by `docker-compose config` (Debian 12's 1.29: it validates the file
against the Compose schema and interpolates compose/.env) and its services
are checked: health checks, restart policies, limits, read-only root
filesystems, non-root users, network segmentation, published ports, and
secrets that come only from the environment file. docker-compose 1.29 renders
every service whatever the profile, so the profile is applied here.

Run from the repository root: python3 -m unittest discover -s compose
"""

import os
import re
import secrets
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMPOSE = HERE / "compose.yaml"
DEV = HERE / "compose.dev.yaml"
ENV_EXAMPLE = HERE / ".env.example"
RUNTIME_CONFIG_EXAMPLE = HERE / "runtime-config.example.toml"
DOCKERFILE = HERE / "Dockerfile"
DOCKERIGNORE = HERE / "Dockerfile.dockerignore"

FILE_SETS = {"production": (COMPOSE,), "development": (COMPOSE, DEV)}
PROFILES = (None, "spin")

HOST_USER = "65532:65532"
HOST_PROBE = ["CMD", "/usr/local/bin/nexa", "probe", "http://127.0.0.1:9464/readyz"]
ADMIN_PORT = "9464"
# Services by role, by image name (registry, namespace and tag stripped).
DATABASE_IMAGES = {"postgres", "redis"}
# Services allowed a writable root filesystem, with the reason. None today.
WRITABLE_ROOT = {}
# Environment keys that hold secrets (nexa check-config looks at the same
# suffixes); REDISCLI_AUTH is redis-cli's password.
SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|_AUTH)$")
VARIABLE_REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")


def env_file_entries(path):
    entries = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key] = value
    return entries


def docker_compose(files, env_file):
    """`docker-compose config` for these files, in an environment without any
    of the variables the files use, so only the env file supplies them."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in env_file_entries(ENV_EXAMPLE) and not k.startswith("COMPOSE_")
    }
    command = ["docker-compose", "--env-file", str(env_file)]
    for f in files:
        command += ["-f", str(f)]
    return subprocess.run(command + ["config"], env=clean, capture_output=True, text=True, timeout=60)


def image_name(image):
    last = image.split("@")[0].rsplit("/", 1)[-1]
    return last.split(":")[0]


def published_ports(service):
    """(host_ip, published, target) of each published port, as rendered."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip"), str(entry.get("published") or ""), str(entry["target"])))
            continue
        text = str(entry).split("/")[0]
        parts = text.rsplit(":", 2)
        if len(parts) == 3:
            ports.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            ports.append((None, parts[0], parts[1]))
        else:
            ports.append((None, "", parts[0]))
    return ports


def seconds(duration):
    """A Compose duration (`1m30s`, `20s`, `500ms`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(n) * units[u] for n, u in parts)


def networks(service):
    value = service.get("networks", {})
    return set(value) if isinstance(value, (dict, list)) else set()


def environment(service):
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.partition("=")[::2] for item in value)
    return {k: "" if v is None else str(v) for k, v in value.items()}


def volume_mounts(service):
    """(source, target, kind) of each mount; kind is `volume` or `bind`."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts.append((entry.get("source"), entry["target"], entry["type"]))
        else:
            source, target = entry.split(":")[:2]
            kind = "bind" if source.startswith(("/", ".")) else "volume"
            mounts.append((source, target, kind))
    return mounts


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        example = env_file_entries(ENV_EXAMPLE)
        # Every empty value of .env.example (the secrets) gets a random one,
        # as a user fills them in.
        cls.secrets = {k: secrets.token_hex(24) for k, v in example.items() if v == ""}
        # The example's settings with the secrets filled in; and the secrets
        # alone, so that the files' own defaults are checked too.
        env_files = {
            ".env": {k: cls.secrets.get(k, v) for k, v in example.items()},
            "secrets only": cls.secrets,
        }
        cls.rendered = {}
        for env_name, values in env_files.items():
            env_file = Path(cls.tmp.name) / env_name.replace(" ", "-")
            env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
            for name, files in FILE_SETS.items():
                result = docker_compose(files, env_file)
                if result.returncode != 0:
                    raise AssertionError(f"docker-compose config refused the {name} files:\n{result.stderr}")
                cls.rendered[f"{name} with {env_name}"] = yaml.safe_load(result.stdout)
        cls.raw = {path.name: yaml.safe_load(path.read_text()) for path in (COMPOSE, DEV)}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def cases(self):
        """(label, services started, whole config) of every combination."""
        for name, config in self.rendered.items():
            for profile in PROFILES:
                services = {
                    service_name: service
                    for service_name, service in config["services"].items()
                    if not service.get("profiles") or profile in service["profiles"]
                }
                yield f"{name}, profile {profile or '(none)'}", services, config

    def each_service(self):
        """(label, name, service, services, config) of every service of every combination."""
        return [
            (label, name, service, services, config)
            for label, services, config in self.cases()
            for name, service in services.items()
        ]

    def test_the_profiles_select_the_spin_variant(self):
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                self.assertTrue({"nexa", "postgres", "redis", "prometheus", "grafana", "jaeger"} <= set(services))
                self.assertEqual("spin" in services, label.endswith("profile spin"))

    def test_unfilled_secrets_stop_compose(self):
        """.env.example as committed (secrets empty) is refused, naming the variable."""
        for name, files in FILE_SETS.items():
            with self.subTest(files=name):
                result = docker_compose(files, ENV_EXAMPLE)
                self.assertNotEqual(result.returncode, 0, result.stdout)
                self.assertRegex(result.stderr, r"set [A-Z_]+ in compose/\.env")

    def test_every_secret_is_required(self):
        """Each secret reference is `${NAME:?message}`: Compose stops when one is empty."""
        required = {k for k, v in env_file_entries(ENV_EXAMPLE).items() if v == ""}
        for path in (COMPOSE, DEV):
            for name, guard in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)([^}]*)\}", path.read_text()):
                if name in required:
                    with self.subTest(file=path.name, variable=name):
                        self.assertRegex(guard, r"^:\?.+")

    def test_every_service_has_a_healthcheck(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                check = service.get("healthcheck") or {}
                self.assertFalse(check.get("disable", False))
                test = check.get("test")
                self.assertIsInstance(test, list)
                self.assertIn(test[0], ("CMD", "CMD-SHELL"))
                self.assertGreater(len(test), 1)
                for key in ("interval", "timeout", "retries", "start_period"):
                    self.assertIn(key, check)

    def test_every_service_restarts(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                self.assertIn(service.get("restart"), ("always", "unless-stopped"))

    def test_every_service_has_cpu_memory_and_process_limits(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                self.assertGreater(float(service.get("cpus", 0)), 0)
                self.assertRegex(str(service.get("mem_limit", "")), r"^\d+[kmg]$")
                self.assertGreater(int(service.get("pids_limit", 0)), 0)

    def test_every_root_filesystem_is_read_only(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                if name not in WRITABLE_ROOT:
                    self.assertIs(service.get("read_only"), True)

    def test_every_service_runs_unprivileged(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                user = str(service.get("user", ""))
                self.assertTrue(user, "no user: the image's default may be root")
                self.assertNotIn(user.split(":")[0], ("root", "0"))
                self.assertFalse(service.get("privileged", False))
                self.assertEqual(service.get("cap_drop"), ["ALL"])
                self.assertIn("no-new-privileges:true", service.get("security_opt", []))
                self.assertNotIn("cap_add", service)
                if name in ("nexa", "spin"):
                    self.assertEqual(user, HOST_USER)

    def test_databases_publish_nothing_and_are_only_on_the_app_network(self):
        for label, services, config in self.cases():
            with self.subTest(case=label):
                self.assertIs(config["networks"]["app"].get("internal"), True)
                databases = {n for n, s in services.items() if image_name(s["image"]) in DATABASE_IMAGES}
                self.assertEqual(databases, {"postgres", "redis"})
                for name in databases:
                    self.assertEqual(published_ports(services[name]), [], name)
                    self.assertEqual(networks(services[name]), {"app"}, name)
                on_app = {n for n, s in services.items() if "app" in networks(s)}
                self.assertEqual(on_app - databases, {"nexa", "spin"} & set(services))

    def test_the_admin_listener_is_reached_only_over_the_monitoring_network(self):
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                nexa = services["nexa"]
                self.assertEqual(environment(nexa)["NEXA_ADMIN_LISTEN"], f"0.0.0.0:{ADMIN_PORT}")
                for name, service in services.items():
                    targets = [target for _, _, target in published_ports(service)]
                    self.assertNotIn(ADMIN_PORT, targets, name)
                self.assertIn("monitoring", networks(nexa))
                on_monitoring = {n for n, s in services.items() if "monitoring" in networks(s)}
                self.assertEqual(on_monitoring, {"nexa", "prometheus", "grafana"})
                for name in ("prometheus", "grafana", "jaeger"):
                    self.assertEqual(networks(services[name]) & {"app", "edge"}, set(), name)

    def test_published_ports_are_on_loopback_by_default(self):
        for label, name, service, _, _ in self.each_service():
            with self.subTest(case=label, service=name):
                for host_ip, _, _ in published_ports(service):
                    self.assertEqual(host_ip, "127.0.0.1")

    def test_no_literal_secrets_in_the_files(self):
        """Secret-looking values are `${VAR}` references, also inside URLs and
        the Redis command line; nothing lets a database in without a password."""
        for file_name, raw in self.raw.items():
            for name, service in raw["services"].items():
                with self.subTest(file=file_name, service=name):
                    env = environment(service)
                    for key, value in env.items():
                        if SECRET_KEY.search(key):
                            self.assertRegex(value, VARIABLE_REFERENCE, key)
                        userinfo = urlsplit(value).netloc.rpartition("@")[0] if "://" in value else ""
                        if ":" in userinfo:
                            self.assertRegex(userinfo.split(":", 1)[1], VARIABLE_REFERENCE, key)
                    self.assertNotEqual(env.get("POSTGRES_HOST_AUTH_METHOD", "").lower(), "trust")
                    self.assertFalse([k for k in env if k.endswith("ALLOW_EMPTY_PASSWORD")])
                    command = service.get("command") or []
                    for flag, value in zip(command, command[1:]):
                        if flag in ("--requirepass", "--masterauth"):
                            self.assertRegex(value, VARIABLE_REFERENCE, flag)

    def test_secrets_come_from_the_env_file(self):
        s = self.secrets
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                nexa = environment(services["nexa"])
                self.assertEqual(nexa["SPIN_VARIABLE_JWT_SECRET"], s["JWT_SECRET"])
                self.assertEqual(nexa["SPIN_VARIABLE_ADMIN_PASSWORD"], s["ADMIN_PASSWORD"])
                self.assertEqual(nexa["NEXA_ADMIN_TOKEN"], s["NEXA_ADMIN_TOKEN"])
                self.assertEqual(urlsplit(nexa["SPIN_VARIABLE_DATABASE_URL"]).password, s["POSTGRES_PASSWORD"])
                self.assertEqual(urlsplit(nexa["NEXA_RATE_LIMIT_REDIS_URL"]).password, s["REDIS_PASSWORD"])
                self.assertEqual(environment(services["postgres"])["POSTGRES_PASSWORD"], s["POSTGRES_PASSWORD"])
                redis_command = services["redis"]["command"]
                self.assertEqual(redis_command[redis_command.index("--requirepass") + 1], s["REDIS_PASSWORD"])
                self.assertEqual(
                    environment(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"], s["GRAFANA_ADMIN_PASSWORD"]
                )

    def test_every_variable_the_files_use_is_in_env_example(self):
        example = env_file_entries(ENV_EXAMPLE)
        for path in (COMPOSE, DEV):
            used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text()))
            with self.subTest(file=path.name):
                self.assertEqual(used - set(example), set())
        # The secrets are empty in the example: nothing to copy by mistake.
        for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET", "ADMIN_PASSWORD", "NEXA_ADMIN_TOKEN"):
            self.assertEqual(example.get(key), "", key)

    def test_env_and_secret_files_are_ignored_by_git(self):
        for path in ("compose/.env", "compose/secrets/runtime-config.toml"):
            result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path])
            self.assertEqual(result.returncode, 0, f"{path} is not ignored by git")
        for path in ("compose/.env.example", "compose/runtime-config.example.toml"):
            result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path])
            self.assertEqual(result.returncode, 1, f"{path} is ignored by git")

    def test_the_host_probes_itself_and_keeps_its_state_in_a_volume(self):
        for label, services, config in self.cases():
            with self.subTest(case=label):
                nexa = services["nexa"]
                self.assertEqual(nexa["healthcheck"]["test"], HOST_PROBE)
                self.assertGreaterEqual(seconds(nexa["healthcheck"]["start_period"]), 60)
                self.assertEqual(nexa["build"]["target"], "nexa")
                self.assertTrue(nexa["build"]["dockerfile"].endswith("compose/Dockerfile"))
                command = nexa["command"]
                self.assertEqual(command[0], "up")
                state_dir = command[command.index("--state-dir") + 1]
                mounts = {target: (source, kind) for source, target, kind in volume_mounts(nexa)}
                self.assertEqual(mounts.get(state_dir, (None, None))[1], "volume", state_dir)
                self.assertIn(mounts[state_dir][0], config["volumes"])
                self.assertEqual(environment(nexa)["SPIN_HTTP_LISTEN_ADDR"], "0.0.0.0:3000")
                self.assertIn("3000", [target for _, _, target in published_ports(nexa)])
                self.assertEqual(
                    {name: dep.get("condition") for name, dep in nexa["depends_on"].items()},
                    {"postgres": "service_healthy", "redis": "service_healthy"},
                )

    def test_the_host_stops_after_its_shutdown_grace(self):
        host = tomllib.loads((ROOT / "nexa.toml").read_text())
        grace = host.get("shutdown_grace_ms", 10_000) + host.get("trace_shutdown_timeout_ms", 2_000)
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                self.assertGreater(seconds(services["nexa"].get("stop_grace_period", "10s")), grace / 1000)

    def test_the_database_variables_agree_with_the_database_url(self):
        for label, services, _ in self.cases():
            for host in ("nexa", "spin"):
                if host not in services:
                    continue
                with self.subTest(case=label, host=host):
                    env = environment(services[host])
                    url = urlsplit(env["SPIN_VARIABLE_DATABASE_URL"])
                    self.assertEqual(url.scheme, "postgres")
                    self.assertEqual(env["SPIN_VARIABLE_DB_HOST"], url.hostname)
                    self.assertEqual(env["SPIN_VARIABLE_DB_PORT"], str(url.port))
                    self.assertIn(url.hostname, services)
                    self.assertTrue(networks(services[url.hostname]) & networks(services[host]))

    def test_the_runtime_config_is_a_secret_from_an_ignored_file(self):
        for label, services, config in self.cases():
            for host in ("nexa", "spin"):
                if host not in services:
                    continue
                with self.subTest(case=label, host=host):
                    service = services[host]
                    (mounted,) = service["secrets"]
                    path = f"/run/secrets/{mounted['target']}"
                    if host == "nexa":
                        self.assertEqual(environment(service)["NEXA_RUNTIME_CONFIG_FILE"], path)
                    else:
                        command = service["command"]
                        self.assertEqual(command[command.index("--runtime-config-file") + 1], path)
                    source = Path(config["secrets"][mounted["source"]]["file"])
                    self.assertEqual(source.parent, HERE / "secrets")
        example = tomllib.loads(RUNTIME_CONFIG_EXAMPLE.read_text())
        store = example["key_value_store"]["default"]
        self.assertEqual(store["type"], "redis")
        self.assertEqual(urlsplit(store["url"]).hostname, "redis")
        self.assertIn("CHANGE-ME", store["url"])
        # A static provider would win over the SPIN_VARIABLE_* environment.
        self.assertNotIn("variables_provider", example)

    def test_prometheus_loads_the_compose_config_and_the_repository_rules(self):
        prometheus_dir = ROOT / "observability" / "prometheus"
        scrape = yaml.safe_load((prometheus_dir / "compose.yml").read_text())
        standalone = yaml.safe_load((prometheus_dir / "prometheus.yml").read_text())
        self.assertEqual(scrape["rule_files"], standalone["rule_files"])
        (job,) = scrape["scrape_configs"]
        self.assertEqual(job["job_name"], "nexa")
        self.assertEqual(job["static_configs"], [{"targets": [f"nexa:{ADMIN_PORT}"]}])
        for label, services, config in self.cases():
            with self.subTest(case=label):
                service = services["prometheus"]
                mounts = {Path(source): target for source, target, kind in volume_mounts(service) if kind == "bind"}
                flags = dict(arg.split("=", 1) for arg in service["command"])
                self.assertEqual(flags["--config.file"], f"{mounts[prometheus_dir]}/compose.yml")
                tsdb = {target: kind for _, target, kind in volume_mounts(service)}
                self.assertEqual(tsdb.get(flags["--storage.tsdb.path"]), "volume")
                self.assertTrue(networks(service) & networks(services["nexa"]))

    def test_grafana_is_provisioned_from_the_repository(self):
        grafana_dir = ROOT / "observability" / "grafana"
        provider = yaml.safe_load((grafana_dir / "provisioning/dashboards/nexa.yml").read_text())
        dashboards_path = provider["providers"][0]["options"]["path"]
        datasource = yaml.safe_load((grafana_dir / "provisioning/datasources/prometheus.yml").read_text())
        datasource_host = urlsplit(datasource["datasources"][0]["url"]).hostname
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                grafana = services["grafana"]
                mounts = {Path(source): target for source, target, kind in volume_mounts(grafana) if kind == "bind"}
                self.assertEqual(mounts.get(grafana_dir / "provisioning"), "/etc/grafana/provisioning")
                self.assertEqual(mounts.get(grafana_dir / "dashboards"), dashboards_path)
                self.assertTrue(networks(grafana) & networks(services[datasource_host]))

    def test_traces_go_to_jaeger_over_the_tracing_network(self):
        for label, services, _ in self.cases():
            with self.subTest(case=label):
                env = environment(services["nexa"])
                endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
                self.assertEqual((endpoint.hostname, endpoint.port, env["OTEL_EXPORTER_OTLP_PROTOCOL"]), ("jaeger", 4317, "grpc"))
                self.assertIn("tracing", networks(services["nexa"]) & networks(services["jaeger"]))
                self.assertEqual([target for _, _, target in published_ports(services["jaeger"])], ["16686"])

    def test_the_spin_variant_serves_the_same_components_with_the_same_settings(self):
        for label, services, _ in self.cases():
            if "spin" not in services:
                continue
            with self.subTest(case=label):
                nexa, spin = services["nexa"], services["spin"]
                self.assertEqual(spin["build"]["target"], "spin")
                self.assertEqual(
                    {k: v for k, v in spin["build"].items() if k != "target"},
                    {k: v for k, v in nexa["build"].items() if k != "target"},
                )
                self.assertEqual(spin["command"][:3], ["up", "--from", "/app/spin.toml"])
                self.assertEqual(spin["command"][:3], nexa["command"][:3])
                variables = lambda s: {k: v for k, v in environment(s).items() if k.startswith("SPIN_VARIABLE_")}
                self.assertEqual(variables(spin), variables(nexa))
                self.assertEqual(spin["secrets"], nexa["secrets"])


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        text = DOCKERFILE.read_text()
        cls.text = text
        # Instructions with their continuation lines joined, comments dropped.
        joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
        cls.instructions = [l.strip() for l in joined.splitlines() if l.strip()]
        cls.stages = {}
        current = None
        for line in cls.instructions:
            match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
            if match:
                current = match.group(2)
                cls.stages[current] = [line]
            elif current:
                cls.stages[current].append(line)
        cls.last_stage = current

    def stage(self, name):
        return self.stages[name]

    def test_the_default_target_is_the_host_on_distroless_as_non_root(self):
        self.assertEqual(self.last_stage, "nexa")
        self.assertIn("ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot", self.instructions)
        for name in ("nexa", "spin"):
            with self.subTest(stage=name):
                lines = self.stage(name)
                self.assertEqual(lines[0].split()[1], "${RUNTIME_IMAGE}")
                self.assertIn("USER 65532:65532", lines)
                self.assertFalse([l for l in lines if l.startswith("RUN ")], "the runtime image has no shell")

    def test_the_health_check_uses_nexa_probe_without_a_shell(self):
        (check,) = [l for l in self.stage("nexa") if l.startswith("HEALTHCHECK")]
        self.assertIn('CMD ["/usr/local/bin/nexa", "probe", "http://127.0.0.1:9464/readyz"]', check)

    def test_npm_ci_runs_before_the_sources_are_copied(self):
        lines = self.stage("dashboard")
        npm_ci = next(i for i, l in enumerate(lines) if "npm ci" in l)
        lockfile = next(i for i, l in enumerate(lines) if "package-lock.json" in l and l.startswith("COPY"))
        sources = next(i for i, l in enumerate(lines) if l.startswith("COPY frontend/ "))
        self.assertLess(lockfile, npm_ci)
        self.assertLess(npm_ci, sources)

    def test_cargo_builds_with_cached_registry_and_target(self):
        (build,) = [l for l in self.stage("builder") if "cargo build" in l]
        self.assertIn("ENV CARGO_TARGET_DIR=/cargo-target", " ".join(self.stage("builder")))
        for target in ("/usr/local/cargo/registry", "/cargo-target"):
            self.assertIn(f"--mount=type=cache,target={target}", build)
        self.assertIn("--locked", build)

    def test_the_builder_builds_every_component_spin_toml_names_where_the_image_expects_it(self):
        manifest = tomllib.loads((ROOT / "spin.toml").read_text())
        sed = re.compile(r'^components/([^/"]*)/[^"]*\.wasm$')
        for name, component in manifest["component"].items():
            with self.subTest(component=name):
                match = sed.match(component["source"])
                self.assertIsNotNone(match, "the Dockerfile's sed would not find this component")
                self.assertEqual(component["source"], f"components/{match.group(1)}/{match.group(1)}.wasm")

    def test_no_compiled_components_are_baked_in(self):
        for name, lines in self.stages.items():
            for line in lines:
                with self.subTest(stage=name, line=line[:60]):
                    self.assertNotRegex(line, r"nexa-artifacts|\.cwasm|/\.spin\b")
                    if line.startswith("RUN "):
                        # Nothing runs the host at build time (it would compile).
                        self.assertNotRegex(line, r"\bnexa\s+(up|build)\b")
        # ... and the reason is written down where someone would add them.
        self.assertTrue('"cached artifact unusable; recompiling"' in self.text, "the Dockerfile does not say why")
        ignored = DOCKERIGNORE.read_text().split()
        for pattern in ("**/.spin", "**/*.cwasm", "**/target", "**/.env", "compose/secrets"):
            self.assertIn(pattern, ignored)


if __name__ == "__main__":
    unittest.main()
