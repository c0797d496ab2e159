"""deploy/: schema checks (no cluster, no Docker engine here) and the operational contracts.

Kubernetes manifests are validated strictly against the API schemas bundled with
`kubernetes-validate` (offline); the Cloud Run service against a vendored schema of the fields
we use; the Dockerfile is parsed (`dockerfile-parse`) and checked for what the image promises.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from gateway.ops.metrics import GatewayMetrics
from gateway.settings import Settings, load_settings, parse_recordings_url

REPO = Path(__file__).parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""Oldest supported minor we target, and the newest the bundled schemas know."""


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def manifests() -> dict[str, dict[str, Any]]:
    return {
        path.name: load(path) for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def probe_path(probe: dict[str, Any]) -> str | None:
    return probe.get("httpGet", {}).get("path")


# ------------------------------------------------------------------ Kubernetes


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(manifests()))
def test_kubernetes_manifest_is_valid(name: str, version: str) -> None:
    kubernetes_validate.validate(manifests()[name], version, strict=True)


def test_the_schema_check_catches_a_typo() -> None:
    deployment = manifests()["deployment.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(manifests())


def test_deployment_drains_calls_before_it_is_killed() -> None:
    deployment = manifests()["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert probe_path(container["readinessProbe"]) == "/healthz"
    # /healthz is 503 while draining: liveness on it would kill a draining pod.
    assert probe_path(container["livenessProbe"]) != "/healthz"
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = int(command[1])
    drain_s = float(env_of(container)["DRAIN_TIMEOUT_S"])
    assert pre_stop_s >= 5
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + drain_s
    assert drain_s >= 300  # long enough for phone calls
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_deployment_runs_as_the_images_non_root_user() -> None:
    pod = manifests()["deployment.yaml"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_user_uid()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/gateway"} <= mounts  # where the image writes
    assert container["ports"][0]["containerPort"] == 8080


def test_service_hpa_and_pdb_point_at_the_deployment() -> None:
    docs = manifests()
    deployment, service = docs["deployment.yaml"], docs["service.yaml"]
    hpa, pdb = docs["hpa.yaml"], docs["pdb.yaml"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port_names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]
                  ["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2  # a PDB of one pod would block every drain
    (pods_metric,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    name = pods_metric["pods"]["metric"]["name"]
    assert name == "gateway_active_calls"
    # …and the gateway really exports that gauge on /metrics.
    assert GatewayMetrics().registry.get_sample_value(name) == 0.0


def test_pods_ship_recordings_to_a_bucket_and_wait_for_the_last_uploads() -> None:
    data = manifests()["configmap.yaml"]["data"]
    assert parse_recordings_url(data["RECORDINGS_URL"]).scheme in ("gs", "s3")
    pod = manifests()["deployment.yaml"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain_s = float(env_of(container)["DRAIN_TIMEOUT_S"])
    uploads_s = float(
        {**data, **env_of(container)}.get(
            "RECORDINGS_UPLOAD_SHUTDOWN_S", Settings.model_fields["recordings_upload_shutdown_s"]
            .default
        )
    )
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + drain_s + uploads_s


def test_config_map_holds_only_known_settings() -> None:
    data = manifests()["configmap.yaml"]["data"]
    known = {name.upper() for name in Settings.model_fields}
    assert set(data) <= known, set(data) - known
    assert not {"GEMINI_API_KEY", "TWILIO_AUTH_TOKEN"} & set(data)  # secrets go in a Secret


# ------------------------------------------------------------------ Cloud Run


def test_cloud_run_service_is_valid_and_fit_for_calls() -> None:
    schema = json.loads((Path(__file__).parent / "data" / "cloudrun_service.schema.json")
                        .read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    service = load(DEPLOY / "cloudrun" / "service.yaml")
    jsonschema.Draft202012Validator(schema).validate(service)

    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    spec = template["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    assert spec["timeoutSeconds"] == 3600  # a call is one request: allow the longest
    assert annotations["run.googleapis.com/sessionAffinity"] == "true"
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    assert int(annotations["autoscaling.knative.dev/minScale"]) >= 1
    assert 0 < spec["containerConcurrency"] <= int(env["MAX_CONCURRENT_CALLS"])
    assert float(env["DRAIN_TIMEOUT_S"]) < 10  # Cloud Run kills 10 s after SIGTERM
    # Its filesystem is memory: recordings go to a bucket, and the last uploads fit in the 10 s.
    assert parse_recordings_url(env["RECORDINGS_URL"]).scheme == "gs"
    assert float(env["DRAIN_TIMEOUT_S"]) + float(env["RECORDINGS_UPLOAD_SHUTDOWN_S"]) < 10
    assert load_settings(env_file=None, **{k.lower(): v for k, v in env.items()}).recordings_url
    assert probe_path(container["startupProbe"]) == "/healthz"
    assert container["ports"][0]["containerPort"] == 8080


def test_the_cloud_run_schema_catches_a_typo() -> None:
    schema = json.loads((Path(__file__).parent / "data" / "cloudrun_service.schema.json")
                        .read_text())
    service = load(DEPLOY / "cloudrun" / "service.yaml")
    service["spec"]["template"]["spec"]["timeoutSecond"] = 3600
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(service, schema)


# ------------------------------------------------------------------ Docker


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=io.BytesIO((DEPLOY / "Dockerfile").read_bytes()))
    return parser


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    instructions: list[dict[str, Any]] = parser.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def dockerfile_user_uid() -> int:
    users = [ins["value"] for ins in final_stage(dockerfile()) if ins["instruction"] == "USER"]
    return int(users[-1].split(":")[0])


def test_dockerfile_builds_a_small_non_root_image() -> None:
    parser = dockerfile()
    froms = [ins["value"] for ins in parser.structure if ins["instruction"] == "FROM"]
    assert len(froms) == 2 and all(f.startswith("python:3.11-slim") for f in froms)
    final = final_stage(parser)
    by_kind: dict[str, list[str]] = {}
    for ins in final:
        by_kind.setdefault(ins["instruction"], []).append(ins["value"])

    (user,) = by_kind["USER"]
    assert user.split(":")[0] not in ("root", "0") and dockerfile_user_uid() >= 1000
    assert by_kind["EXPOSE"] == ["8080"]
    (healthcheck,) = by_kind["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    assert json.loads(by_kind["CMD"][0]) == ["gateway", "serve"]
    assert by_kind["STOPSIGNAL"] == ["SIGTERM"]
    assert any(value.startswith("--from=build /opt/venv") for value in by_kind["COPY"])
    final_runs = " ".join(by_kind.get("RUN", []))
    for build_tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert build_tool not in final_runs
    env = parser.envs  # the final stage's environment
    assert env["PORT"] == "8080" and env["AGENTS_DIR"] == "/app/agents"
    # The build stage installs the clients of RECORDINGS_URL (gs://, s3://).
    build_runs = " ".join(
        ins["value"] for ins in parser.structure[: len(parser.structure) - len(final)]
        if ins["instruction"] == "RUN"
    )
    installed = re.search(r"pip install '?\.\[([a-z0-9,]+)\]'?", build_runs)
    assert installed is not None and {"gcs", "s3"} <= set(installed.group(1).split(","))


def test_dockerfile_copies_what_exists_and_dockerignore_keeps_the_context_small() -> None:
    for ins in dockerfile().structure:
        if ins["instruction"] == "COPY" and "--from=" not in ins["value"]:
            *sources, _ = [word for word in shlex.split(ins["value"]) if not word.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), source
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", ".env"} <= ignored


def test_compose_builds_the_image_and_waits_for_the_drain() -> None:
    compose = load(DEPLOY / "docker-compose.yml")
    gateway = compose["services"]["gateway"]
    context = (DEPLOY / gateway["build"]["context"]).resolve()
    assert context == REPO.resolve()
    assert (context / gateway["build"]["dockerfile"]).is_file()
    assert "8080:8080" in gateway["ports"]
    grace = re.fullmatch(r"(\d+)s", gateway["stop_grace_period"])
    assert grace is not None
    assert float(grace.group(1)) > load_settings(env_file=None).drain_timeout_s
    assert compose["services"]["tunnel"]["profiles"] == ["tunnel"]
