"""Offline checks that the container, compose file and Kubernetes manifests fit the code: they render,
validate against the Kubernetes schemas, set exactly the environment the code reads, and probe
endpoints that exist on the port the service listens on."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose
from kubernetes_validate import validate
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
        validate(doc, K8S_VERSION, strict=True)  # raises on any schema error


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
