"""Offline checks that the container, compose file, Kubernetes manifests and lock files fit the code: they
render, validate against the Kubernetes schemas, set exactly the environment the code reads, give each
service its own database, read only Secret keys the README tells the operator to create, migrate before
serving, probe endpoints that exist on the port each role listens on, and install the versions
pyproject.toml pins."""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose
from kubernetes_validate import validate
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings

from services.billing.app import create_app as create_billing
from services.billing.app import create_worker as create_billing_worker
from services.billing.settings import BillingSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.referral.app import create_app as create_referral
from services.referral.app import create_worker as create_referral_worker
from services.referral.settings import ReferralSettings
from services.registry.app import create_app as create_registry
from services.registry.app import create_worker as create_registry_worker
from services.registry.settings import RegistrySettings
from shared.app import create_worker_app
from shared.settings import ServiceSettings

from ..conftest import TEST_KEY_SECRET, TEST_PII_KEY

ROOT = Path(__file__).parents[2]
SERVICES: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "registry": RegistrySettings,
    "referral": ReferralSettings,
    "billing": BillingSettings,
}
# the services with a worker role (`python -m services.<name> worker --port 9100`); the gateway has none
WORKERS = ("registry", "referral", "billing")
WORKER_PORT = 9100
SECRET = "yigongti-secrets"
K8S_VERSION = "1.32.0"
# the Prometheus Operator's PrometheusRule (deploy/k8s/base/alerts.yaml): not in the Kubernetes schemas
CRD_GROUPS = {"monitoring.coreos.com"}
SECRET_SETTINGS = {"PII_KEY", "PII_OLD_KEYS", "KEY_SECRET", "KEY_OLD_SECRETS"}


def env_names(settings: type[BaseSettings]) -> set[str]:
    return {name.upper() for name in settings.model_fields}


def required_secrets(settings: type[ServiceSettings]) -> set[str]:
    """The keys without which the settings refuse to load in production (PII_KEY, KEY_SECRET)."""
    return {spec.field.upper() for spec in settings.required_keys}


def render(overlay: str) -> list[dict[str, Any]]:
    kustomize = subprocess.run(
        [str(ROOT / "scripts/kustomize.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = subprocess.run(
        [kustomize, "build", str(ROOT / "deploy/k8s/overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module", params=["dev", "prod"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def test_overlays_validate_against_kubernetes_schemas(manifests: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in manifests}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Namespace",
    } <= kinds
    for doc in manifests:
        if doc["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue  # an operator's resource: no schema in Kubernetes' own (checked structurally below)
        validate(doc, K8S_VERSION, strict=True)  # raises on any schema error


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
PROMQL_WORDS |= {"bool", "offset", "inf", "nan"}
REQUIRED_ALERT_METRICS = {
    "outbox_oldest_unpublished_age_seconds",
    "consumer_lag_records",
    "consumer_dead_lettered_total",
    "referral_sweep_failures_total",
    "referral_sweep_last_success_timestamp",
    "gateway_audit_oldest_seconds",
    "gateway_rate_limit_fail_open_total",
}


def defined_metrics() -> set[str]:
    """Every series name the code can export: the default registry of this process, into which importing the
    four apps (above) and the shared workers registered their metrics."""
    for module in ("shared.consumer", "shared.metrics", "shared.outbox", "shared.retention"):
        importlib.import_module(module)
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["_sum", "_count"],
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def promql_metrics(expr: str) -> set[str]:
    """The metric names an expression reads: what is left once strings, label matchers, ranges, label
    lists, function calls and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_:]*)\b(?!\s*\()", expr))
    return names - PROMQL_WORDS


def test_promql_metric_names_are_found() -> None:
    expr = 'sum without (pod) (increase(a_total{kind="x"}[5m]) > 0 or (a_total unless a_total offset 5m)) > 0'
    assert promql_metrics(expr) == {"a_total"}
    assert promql_metrics("time() - max by (group) (b_seconds) > 300 and on (group) c") == {"b_seconds", "c"}
    assert "consumer_lag_records" in defined_metrics() and "consumer_lag" not in defined_metrics()
    assert "consumer_dead_lettered_total" in defined_metrics()


def test_alert_rules_are_complete_and_read_metrics_the_code_exports(manifests: list[dict[str, Any]]) -> None:
    """A PrometheusRule has no schema in Kubernetes' own: checked here as the operator reads it, and
    every metric an alert reads must be one the code defines (a typo would be an alert that never fires)."""
    rules = [d for d in manifests if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1 and rules[0]["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        rules[0]["metadata"]["namespace"] and rules[0]["metadata"]["labels"]["yigongti.io/alerts"] == "true"
    )
    defined, used, alerts = defined_metrics(), set(), []
    for group in rules[0]["spec"]["groups"]:
        assert group["name"] and group["rules"], group
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            alerts.append(rule["alert"])
            assert re.fullmatch(r"Yigongti[A-Za-z]+", rule["alert"])
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
            for key in ("summary", "description"):  # in Chinese and in English
                text = rule["annotations"][key]
                assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{4,}", text), (rule, key)
            metrics = promql_metrics(rule["expr"])
            assert metrics and metrics <= defined, (rule["alert"], metrics - defined)
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            used |= metrics
    assert len(alerts) == len(set(alerts))
    assert used >= REQUIRED_ALERT_METRICS


def test_no_secret_values_in_the_manifests(manifests: list[dict[str, Any]]) -> None:
    assert not [d for d in manifests if d["kind"] == "Secret"]
    for doc in manifests:
        if doc["kind"] == "ConfigMap":
            assert not {"DATABASE_URL", "AUTH_JWKS", *SECRET_SETTINGS} & set(doc.get("data", {}))
            assert doc.get("data", {}).get("ENVIRONMENT", "production") == "production"


def pod_specs(manifests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource, pod spec) of everything that runs a pod, whatever its kind."""
    specs = []
    for doc in manifests:
        spec = doc.get("spec", {})
        if doc["kind"] == "Pod":
            specs.append((doc, spec))
        elif doc["kind"] == "CronJob":
            specs.append((doc, spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif "template" in spec and "containers" in spec["template"].get("spec", {}):
            specs.append((doc, spec["template"]["spec"]))
    return specs


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def secret_refs(manifests: list[dict[str, Any]]) -> list[tuple[str, str | None, bool]]:
    """(Secret, key, optional) of every secretKeyRef of every container and init container; (Secret, None,
    optional) for an `envFrom: secretRef` (all its keys) and a secret volume without `items`."""
    refs: list[tuple[str, str | None, bool]] = []
    for _, pod in pod_specs(manifests):
        for c in containers(pod):
            for e in c.get("env", []):
                if ref := e.get("valueFrom", {}).get("secretKeyRef"):
                    refs.append((ref["name"], ref["key"], bool(ref.get("optional"))))
            for source in c.get("envFrom", []):
                if ref := source.get("secretRef"):
                    refs.append((ref["name"], None, bool(ref.get("optional"))))
        for volume in pod.get("volumes", []):
            if ref := volume.get("secret"):
                items = ref.get("items") or [{"key": None}]
                refs += [(ref["secretName"], i["key"], bool(ref.get("optional"))) for i in items]
    return refs


def documented_secrets(readme: str) -> dict[str, set[str]]:
    """The Secrets the README's `kubectl create secret generic NAME` commands make, with their keys
    (--from-literal=KEY=… / --from-file=KEY=…), each command with its continuation lines."""
    secrets: dict[str, set[str]] = {}
    for match in re.finditer(r"create secret generic ([a-z0-9-]+)((?:[^\n]*\\\n)*[^\n]*)", readme):
        keys = re.findall(r"--from-(?:literal|file)=([A-Za-z0-9_.-]+)=", match.group(2))
        secrets.setdefault(match.group(1), set()).update(keys)
    return secrets


def test_documented_secrets_are_read_from_the_command() -> None:
    readme = """kubectl -n x create secret generic s \\
  --from-literal=A_URL='postgresql://a' \\
  --from-file=B_KEY=./b.key
--from-literal=NOT_IN_IT=1
kubectl create secret generic t --from-literal=C=1"""
    assert documented_secrets(readme) == {"s": {"A_URL", "B_KEY"}, "t": {"C"}}


def test_every_secret_the_manifests_read_is_documented(manifests: list[dict[str, Any]]) -> None:
    """The operator creates `yigongti-secrets` with the README's `kubectl create secret` command: every key a
    pod reads (env secretKeyRef, envFrom, secret volumes; containers and init containers) is in that
    command, every key in it is read by some pod, and the optional ones (older keys during a rotation)
    are left out of it but explained in the README."""
    readme = (ROOT / "README.md").read_text()
    documented = documented_secrets(readme)
    refs = secret_refs(manifests)
    assert refs and {name for name, _, _ in refs} <= set(documented), "a Secret the README never creates"
    for name, key, optional in refs:
        if key is None:
            continue  # all of a documented Secret's keys
        if optional:
            assert key in readme and key not in documented[name], key
        else:
            assert key in documented[name], f"{name}/{key} is read by a pod but not in the README's command"
    read = {key for name, key, optional in refs if name == SECRET and not optional}
    assert not documented[SECRET] - read, f"the README creates keys no pod reads: {documented[SECRET] - read}"


def test_each_service_reads_its_own_database(manifests: list[dict[str, Any]]) -> None:
    """A container running `python -m services.<name> …` (web, worker or migrate) takes DATABASE_URL from
    the Secret key <NAME>_DATABASE_URL and nothing else: the gateway reading the registry's URL while its
    migrations went to its own was a pod that could not start."""
    seen = set()
    for doc, pod in pod_specs(manifests):
        for c in containers(pod):
            service = c["args"][0].removeprefix("services.")
            assert service in SERVICES, (doc["metadata"]["name"], c["name"], c["args"])
            urls = [e for e in c.get("env", []) if e["name"] == "DATABASE_URL"]
            assert len(urls) == 1, (doc["metadata"]["name"], c["name"])
            ref = urls[0].get("valueFrom", {}).get("secretKeyRef", {})
            assert (ref.get("name"), ref.get("key")) == (SECRET, f"{service.upper()}_DATABASE_URL"), (
                doc["metadata"]["name"],
                c["name"],
                ref,
            )
            assert not ref.get("optional")
            assert doc["metadata"]["name"] in (service, f"{service}-worker"), doc["metadata"]["name"]
            seen.add(service)
    assert seen == set(SERVICES)


def _container_env(container: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, source  # a Secret's keys are named one by one, in `env`
        names |= set(configmaps[source["configMapRef"]["name"]])
    return names


def test_deployments_set_exactly_what_the_code_reads(manifests: list[dict[str, Any]]) -> None:
    """A web Deployment sets exactly what its settings read. A worker sets only what they read, at least
    its database, Kafka and the keys its settings refuse to load without (the worker verifies no tokens,
    so it gets no AUTH_JWKS); so does the migrating init container of either."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in manifests if d["kind"] == "ConfigMap"}
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES) | {f"{name}-worker" for name in WORKERS}
    assert not [d for d in manifests if d["kind"] == "Job"]  # migrations run in init containers
    for name, settings in SERVICES.items():
        web = deployments[name]["spec"]["template"]["spec"]
        assert _container_env(web["containers"][0], configmaps) == env_names(settings), name
        pods = [web]
        if name in WORKERS:
            pods.append(deployments[f"{name}-worker"]["spec"]["template"]["spec"])
            env = _container_env(pods[-1]["containers"][0], configmaps)
            needed = {"SERVICE_NAME", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", *required_secrets(settings)}
            assert needed <= env <= env_names(settings) - {"AUTH_JWKS"}, (name, env ^ needed)
        for pod in pods:
            (init,) = pod["initContainers"]
            env = _container_env(init, configmaps)
            assert {"DATABASE_URL", *required_secrets(settings)} <= env <= env_names(settings), name
            # only the worker's migrate makes the topics: a web pod starts while the broker is away
            is_worker = pod is not web
            assert ("KAFKA_BOOTSTRAP_SERVERS" in env) == is_worker, name


def test_every_pod_migrates_its_database_before_it_serves(manifests: list[dict[str, Any]]) -> None:
    """Migrations run before the new version serves: every Deployment's pods (web and worker) start with
    an init container running the same image's `migrate` for the same service; kustomization.yaml says
    why not a Job."""
    for doc in (d for d in manifests if d["kind"] == "Deployment"):
        pod = doc["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        (main,) = pod["containers"]
        worker = doc["metadata"]["name"].endswith("-worker") or main["args"][0] == "services.gateway"
        expected = [main["args"][0], "migrate"] if worker else [main["args"][0], "migrate", "--no-topics"]
        assert init["args"] == expected, doc["metadata"]["name"]  # web pods never wait for the broker
        assert init["image"] == main["image"]
        assert init["securityContext"]["readOnlyRootFilesystem"] and "resources" in init


def test_probes_hit_real_endpoints_on_the_serving_port(manifests: list[dict[str, Any]]) -> None:
    apps = {
        "gateway": create_gateway(GatewaySettings(key_secret=TEST_KEY_SECRET)),
        "registry": create_registry(RegistrySettings(pii_key=TEST_PII_KEY)),
        "referral": create_referral(),
        "billing": create_billing(),
        "registry-worker": create_worker_app(create_registry_worker(RegistrySettings(pii_key=TEST_PII_KEY))),
        "referral-worker": create_worker_app(create_referral_worker()),
        "billing-worker": create_worker_app(create_billing_worker()),
    }
    for doc in (d for d in manifests if d["kind"] == "Deployment"):
        name = doc["metadata"]["name"]
        service = name.removesuffix("-worker")
        container = doc["spec"]["template"]["spec"]["containers"][0]
        paths = {getattr(r, "path", None) for r in apps[name].routes}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        args = container["args"]
        if name.endswith("-worker"):  # HTTP only for the probes and /metrics, on the worker's port
            assert args == [f"services.{service}", "worker", "--port", str(WORKER_PORT)], name
            assert ports == {"http": WORKER_PORT} and "/metrics" in paths, name
            assert doc["spec"]["replicas"] == 1, name  # the relay's advisory lock: more would stand by
        else:
            assert args[:2] == [f"services.{service}", "serve"]
            assert int(args[args.index("--port") + 1]) == ports["http"]
            service_doc = next(
                d for d in manifests if d["kind"] == "Service" and d["metadata"]["name"] == name
            )
            assert service_doc["spec"]["ports"][0]["targetPort"] == "http"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in paths and get["port"] == "http", (name, probe)


def test_web_tier_scales_and_every_role_has_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    """The web Deployments scale on CPU (HPA, autoscaling/v2); web and worker Deployments each have a
    PodDisruptionBudget selecting their pods, and no Service or HPA points at a worker."""
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    hpas = {
        d["spec"]["scaleTargetRef"]["name"]: d for d in manifests if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert set(hpas) == set(SERVICES)
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    budgets = [d["spec"]["selector"]["matchLabels"] for d in manifests if d["kind"] == "PodDisruptionBudget"]
    services = [d["spec"]["selector"] for d in manifests if d["kind"] == "Service"]
    for name, doc in deployments.items():
        labels = doc["spec"]["template"]["metadata"]["labels"].items()
        assert len([b for b in budgets if b.items() <= labels]) == 1, name
        assert len([s for s in services if s.items() <= labels]) == (name in SERVICES), name


def test_compose_file_parses_and_fits_the_code() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "kafka", "redis", "migrate", *SERVICES, *(f"{w}-worker" for w in WORKERS)} <= set(
        services
    )
    assert not [s for s in services.values() if "RUN_WORKERS" in (s.get("environment") or {})]
    assert services["kafka"]["image"].startswith("apache/kafka:4")
    assert services["postgres"]["image"].startswith("postgres:") and services["redis"]["image"].startswith(
        "redis:"
    )
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        if name in SERVICES:
            assert set(svc["environment"]) == env_names(SERVICES[name]), name
            assert svc["command"][:2] == [f"services.{name}", "serve"] and "8000" in svc["command"]
            assert svc["ports"][0].endswith(":8000") and "/readyz" in " ".join(svc["healthcheck"]["test"])
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert svc["environment"]["DATABASE_URL"].endswith(f"@postgres:5432/{name}"), name
        elif name.removesuffix("-worker") in WORKERS:  # the worker role: relay, consumers, sweeps
            service = name.removesuffix("-worker")
            assert svc["environment"] == services[service]["environment"], name
            assert svc["command"] == [f"services.{service}", "worker", "--port", str(WORKER_PORT)]
            assert f":{WORKER_PORT}/readyz" in " ".join(svc["healthcheck"]["test"]) and "ports" not in svc
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        elif name not in ("devkeys", "migrate"):
            assert "healthcheck" in svc, name
    # migrate runs every service's migrations (and the gateway's create-user)
    assert set(services["migrate"]["environment"]) <= env_names(RegistrySettings) | env_names(GatewaySettings)
    for svc in services.values():  # keys come from the caller's environment, never a value in the file
        for name in SECRET_SETTINGS & set(svc.get("environment") or {}):
            assert svc["environment"][name] == f"${{{name}:-}}", name
    assert services["registry"]["environment"]["AUTH_JWKS_URL"].startswith("http://gateway:8000/")


def test_compose_file_is_valid_compose_spec() -> None:
    """What `docker compose config` checks first: the file against the Compose Specification (the
    compose-spec validator; YAML anchors and merge keys resolved first, as Compose does)."""
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    parsed = PyCompose.from_yaml(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    assert set(parsed.service_names()) == set(doc["services"])
    broken = copy.deepcopy(doc)
    broken["services"]["registry"]["depends_on"]["migrate"]["condition"] = "whenever"
    with pytest.raises(ValueError, match="condition"):
        PyCompose.from_yaml(yaml.safe_dump(broken))  # the validator does reject a wrong file


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert sum(line.startswith("FROM ") for line in text.splitlines()) == 2
    assert "USER 10001" in text and 'ENTRYPOINT ["python", "-m"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".local" in ignored and ".venv" in ignored


def locked(path: Path) -> dict[str, str]:
    """name → version of a lock file's `name==version` lines (names normalised as pip does)."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", path.read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_lock_files_pin_what_pyproject_pins() -> None:
    """`make up`, `make test` and the image install from the lock files (Makefile, Dockerfile): each must
    hold every dependency of pyproject.toml at its pinned version (else run `make lock`), every line with
    hashes, and the image's lock the same versions as the development one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    for lock, requirements in (
        (runtime, project["dependencies"]),
        (dev, [*project["dependencies"], *project["optional-dependencies"]["dev"]]),
    ):
        for requirement in requirements:
            pinned = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement)
            assert pinned, requirement
            name, version = pinned.groups()
            assert lock.get(re.sub(r"[-_.]+", "-", name).lower()) == version, (requirement, "run make lock")
    assert runtime.items() <= dev.items() and "yigongti" not in dev
    for path in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / path).read_text()
        assert all(
            "--hash=sha256:" in entry for entry in re.split(r"\n(?=[A-Za-z0-9])", text) if "==" in entry
        ), path
    assert "--require-hashes -r requirements.lock" in (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in (ROOT / "Makefile").read_text()
