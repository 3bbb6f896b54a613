"""Offline checks that the container, compose file and Kubernetes manifests fit the code: they render,
validate against the Kubernetes schemas, set exactly the environment the code reads, and probe
endpoints that exist on the port the service listens on."""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose
from kubernetes_validate import validate
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings

from services.billing.app import create_app as create_billing
from services.billing.settings import BillingSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.referral.app import create_app as create_referral
from services.referral.settings import ReferralSettings
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings

from ..conftest import TEST_KEY_SECRET, TEST_PII_KEY

ROOT = Path(__file__).parents[2]
SERVICES: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "registry": RegistrySettings,
    "referral": ReferralSettings,
    "billing": BillingSettings,
}
K8S_VERSION = "1.32.0"
# the Prometheus Operator's PrometheusRule (deploy/k8s/base/alerts.yaml): not in the Kubernetes schemas
CRD_GROUPS = {"monitoring.coreos.com"}
SECRET_SETTINGS = {"PII_KEY", "PII_OLD_KEYS", "KEY_SECRET", "KEY_OLD_SECRETS"}


def env_names(settings: type[BaseSettings]) -> set[str]:
    return {name.upper() for name in settings.model_fields}


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
        "Job",
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


def test_every_secret_the_manifests_read_is_documented(manifests: list[dict[str, Any]]) -> None:
    """The operator creates `yigongti-secrets` from the README: every key a pod needs is in that
    command, and the optional ones (old keys during a rotation) are explained there."""
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"--from-literal=([A-Z_]+)=", readme))
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for d in manifests
        if d["kind"] in ("Deployment", "Job")
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert {r["name"] for r in refs} == {"yigongti-secrets"}
    assert {r["key"] for r in refs if not r.get("optional")} == documented
    for r in (r for r in refs if r.get("optional")):
        assert r["key"] in readme and r["key"] not in documented


def _container_env(doc: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> set[str]:
    container = doc["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(configmaps[source["configMapRef"]["name"]])
    return names


def test_deployments_set_exactly_what_the_code_reads(manifests: list[dict[str, Any]]) -> None:
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in manifests if d["kind"] == "ConfigMap"}
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES)
    for name, settings in SERVICES.items():
        assert _container_env(deployments[name], configmaps) == env_names(settings), name
    for job in (d for d in manifests if d["kind"] == "Job"):
        service = job["metadata"]["name"].removesuffix("-migrate")
        assert _container_env(job, configmaps) <= env_names(SERVICES[service])


def test_probes_hit_real_endpoints_on_the_serving_port(manifests: list[dict[str, Any]]) -> None:
    apps = {
        "gateway": create_gateway(GatewaySettings(key_secret=TEST_KEY_SECRET)),
        "registry": create_registry(RegistrySettings(pii_key=TEST_PII_KEY)),
        "referral": create_referral(),
        "billing": create_billing(),
    }
    for doc in (d for d in manifests if d["kind"] == "Deployment"):
        name = doc["metadata"]["name"]
        container = doc["spec"]["template"]["spec"]["containers"][0]
        paths = {getattr(r, "path", None) for r in apps[name].routes}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        args = container["args"]
        assert (
            args[:2] == [f"services.{name}", "serve"] and int(args[args.index("--port") + 1]) == ports["http"]
        )
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in paths and get["port"] == "http", (name, probe)
        service = next(d for d in manifests if d["kind"] == "Service" and d["metadata"]["name"] == name)
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_compose_file_parses_and_fits_the_code() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "kafka", "redis", "migrate", "gateway", "registry", "referral"} <= set(services)
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
