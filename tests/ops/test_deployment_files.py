"""The deployment files run: the compose file against the Compose Specification schema, the
Kubernetes manifests against the Kubernetes API schemas (both offline, from packages the dev
extra installs), and what they configure against the service's own production settings.

Each validator is also shown a file with a deliberate mistake, so a validator that accepts
anything would fail here."""

from __future__ import annotations

import copy
import json
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from core.settings import PLACEHOLDER, Mode, Settings
from tests.helpers import ROOT

INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"
K8S = INFRA / "k8s"
K8S_VERSION = "1.30.0"
CUSTOM_RESOURCES = {"keda.sh/v1alpha1"}  # no schema in the Kubernetes API (KEDA's CRD)
APP_ROLES = ("migrate", "api", "worker", "beat")

Doc = dict[str, Any]


def load_compose() -> Doc:
    loaded: Doc = yaml.safe_load(COMPOSE.read_text())  # `<<` merges resolved as compose does
    return loaded


def compose_schema_errors(document: Doc) -> list[str]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(document)]


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} and ${NAME:?error}, as an operator who set every required
    variable to a random value would get them."""

    def one(match: re.Match[str]) -> str:
        operator, rest = match.group(2), match.group(3)
        return rest if operator == ":-" else secrets.token_urlsafe(48)

    return re.sub(r"\$\{([A-Z_]+)(:-|:\?)([^}]*)\}", one, value)


def test_compose_file_matches_the_compose_specification() -> None:
    assert compose_schema_errors(load_compose()) == []


@pytest.mark.parametrize(
    "mistake",
    ["condition misspelled", "unknown service key", "ports not a list"],
)
def test_compose_validator_rejects_a_broken_file(mistake: str) -> None:
    broken = copy.deepcopy(load_compose())
    api = broken["services"]["api"]
    if mistake == "condition misspelled":
        api["depends_on"]["migrate"]["condition"] = "service_completed"
    elif mistake == "unknown service key":
        api["comand"] = ["api"]
    else:
        api["ports"] = 8000
    assert compose_schema_errors(broken) != []


def test_every_compose_role_shares_one_kek_file_a_base_url_and_waits_for_migrate() -> None:
    compose = load_compose()
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    kek_paths = set()
    for role in APP_ROLES:
        service = services[role]
        env = service["environment"]
        assert env["POCKETCINEMA_MODE"] == "production"
        assert interpolate(env["POCKETCINEMA_BASE_URL"]).startswith("http")
        assert env["POCKETCINEMA_KEY_ENCRYPTION"] == "local"
        # Compose mounts a secret at /run/secrets/<name>: the file every role reads.
        assert service["secrets"] == ["pocketcinema_kek"]
        kek_paths.add(env["POCKETCINEMA_KEK_FILE"])
        if role != "migrate":
            assert service["depends_on"] == {
                "migrate": {"condition": "service_completed_successfully"}
            }
    assert kek_paths == {"/run/secrets/pocketcinema_kek"}
    assert "file" in compose["secrets"]["pocketcinema_kek"]


def test_compose_environment_passes_the_production_checks(tmp_path: Path) -> None:
    env = load_compose()["services"]["api"]["environment"]
    values: dict[str, object] = {
        name.removeprefix("POCKETCINEMA_").lower(): interpolate(str(value))
        for name, value in env.items()
        if name.startswith("POCKETCINEMA_")
    }
    settings = Settings.model_validate(values | {"data_dir": tmp_path})
    assert settings.mode is Mode.production
    assert settings.metrics_port == 9100
    assert settings.worker_metrics_port == 9101
    prometheus = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    targets = json.dumps(prometheus["scrape_configs"])
    assert '"api:9100"' in targets
    assert '"port": 9101' in targets


def k8s_documents() -> list[tuple[str, Doc]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.name, document))
    return documents


def by_kind(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


def test_kubernetes_manifests_match_the_api_schemas() -> None:
    checked = 0
    for name, document in k8s_documents():
        if document["apiVersion"] in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc}")
        checked += 1
    kinds = {d["kind"] for _, d in k8s_documents()}
    assert {"Deployment", "Service", "Ingress", "Secret", "ConfigMap", "Job"} <= kinds
    assert checked >= 9


@pytest.mark.parametrize("mistake", ["unknown field", "wrong type", "missing selector"])
def test_kubernetes_validator_rejects_a_broken_manifest(mistake: str) -> None:
    deployment = copy.deepcopy(by_kind("Deployment")["pocketcinema-api"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if mistake == "unknown field":
        container["readinesProbe"] = container.pop("readinessProbe")
    elif mistake == "wrong type":
        deployment["spec"]["replicas"] = "two"
    else:
        del deployment["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def containers(document: Doc) -> list[Doc]:
    found: list[Doc] = document["spec"]["template"]["spec"]["containers"]
    return found


def test_kubernetes_roles_share_the_kek_probe_and_request_resources() -> None:
    config = by_kind("ConfigMap")["pocketcinema"]["data"]
    assert config["POCKETCINEMA_BASE_URL"].startswith("https://")
    kek_dir = str(Path(config["POCKETCINEMA_KEK_FILE"]).parent)
    for name, deployment in by_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(deployment):
            sources = container["envFrom"]
            assert {"configMapRef": {"name": "pocketcinema"}} in sources, name
            assert {"secretRef": {"name": "pocketcinema"}} in sources, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert volumes[mounts[kek_dir]]["secret"]["secretName"] == "pocketcinema-kek", name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
    [api] = containers(by_kind("Deployment")["pocketcinema-api"])
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [migrate] = containers(by_kind("Job")["pocketcinema-migrate"])
    assert migrate["args"] == ["migrate"]
    assert {"cpu", "memory"} <= set(migrate["resources"]["requests"])


def test_kubernetes_service_and_ingress_reach_the_api() -> None:
    api = by_kind("Deployment")["pocketcinema-api"]
    service = by_kind("Service")["pocketcinema-api"]
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [container] = containers(api)
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    [rule] = by_kind("Ingress")["pocketcinema"]["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "pocketcinema-api", "port": {"name": "http"}}
    assert "metrics" not in json.dumps(rule)  # the metrics port stays inside the cluster


def test_kubernetes_settings_pass_production_checks_once_placeholders_are_replaced(
    tmp_path: Path,
) -> None:
    config = by_kind("ConfigMap")["pocketcinema"]["data"]
    secret = by_kind("Secret")["pocketcinema"]["stringData"]
    raw: dict[str, object] = {
        k.removeprefix("POCKETCINEMA_").lower(): v
        for k, v in (config | secret).items()
        if k.startswith("POCKETCINEMA_")
    }
    # As shipped, the example cannot go live: its placeholders are refused by name.
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(raw | {"data_dir": tmp_path})
    message = " ".join(str(e["msg"]) for e in refused.value.errors())
    assert "POCKETCINEMA_SECRET_KEY" in message
    assert "POCKETCINEMA_METRICS_TOKEN" in message
    filled = {k: secrets.token_urlsafe(48) if PLACEHOLDER in str(v) else v for k, v in raw.items()}
    settings = Settings.model_validate(filled | {"data_dir": tmp_path})
    assert settings.mode is Mode.production
    assert str(settings.kek_file) == config["POCKETCINEMA_KEK_FILE"]
