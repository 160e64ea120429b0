"""deploy/kubernetes/ is valid against the Kubernetes API schemas (kubernetes-validate
ships them in its wheel: the check runs offline), its TOML is a configuration reviewd
accepts, and its timings hang together (the kubelet never kills a pod still draining)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewd.daemon import config as config_module

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"


def documents() -> list[dict]:
    import yaml

    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(kind: str) -> dict:
    found = [doc for _name, doc in documents() if doc["kind"] == kind]
    assert len(found) == 1 or kind in ("Service",), f"{kind}: {len(found)} documents"
    return found[0]


def test_every_manifest_is_valid_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = documents()
    kinds = sorted({doc["kind"] for _name, doc in docs})
    assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"} <= set(kinds)
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc.message} "
                f"at {'/'.join(map(str, exc.path))}"
            )


def test_the_validator_does_catch_a_broken_manifest():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = by_kind("Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _container() -> dict:
    return by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]


def _loaded_config(tmp_path) -> config_module.Config:
    toml = by_kind("ConfigMap")["data"]["reviewd.toml"]
    secret = by_kind("Secret")["stringData"]["api-key"]
    key_file = tmp_path / "api-key"  # where the Secret's file is mounted in the pod
    key_file.write_text(secret + "\n")
    mounted = "/etc/reviewd/secret/api-key"
    assert mounted in toml
    path = tmp_path / "reviewd.toml"
    path.write_text(toml.replace(mounted, str(key_file)))
    return config_module.load(config_file=str(path), environ={}, require_server=False)


def test_the_configmap_is_a_configuration_reviewd_accepts(tmp_path):
    config = _loaded_config(tmp_path)
    assert config.journal_backend == "redis"
    assert config.redis_url.endswith(":6379/0")
    assert config.api_key == by_kind("Secret")["stringData"]["api-key"]
    assert config.http == ("0.0.0.0", 9120)


def test_probes_secret_and_metrics_service_fit_the_container():
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = container["ports"][0]
    assert port["containerPort"] == 9120
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in by_kind("Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-key"]["secret"]["secretName"] == by_kind("Secret")["metadata"]["name"]
    assert "api-key" in by_kind("Secret")["stringData"]
    assert volumes["config"]["configMap"]["name"] == by_kind("ConfigMap")["metadata"]["name"]
    assert mounts["api-key"] == "/etc/reviewd/secret"
    assert not any("KEY" in e["name"] for e in container.get("env", []))  # a file, not env
    services = [
        doc
        for _n, doc in documents()
        if doc["kind"] == "Service"
        and doc["spec"]["selector"] == {"app.kubernetes.io/name": "reviewd"}
    ]
    assert services and services[0]["spec"]["ports"][0]["targetPort"] == port["name"]
    labels = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert (
        by_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    )
    assert by_kind("Deployment")["spec"]["replicas"] >= 3


def test_termination_grace_covers_pre_stop_and_the_drain(tmp_path):
    config = _loaded_config(tmp_path)
    pre_stop = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    pause = float(pre_stop[1])
    grace = by_kind("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # SIGTERM comes after preStop; the daemon drains for grace_period; 10 s to close.
    assert grace == pause + config.grace_period + 10, (grace, pause, config.grace_period)


def test_the_compose_file_runs_three_replicas_on_redis():
    import yaml

    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    reviewd = compose["services"]["reviewd"]
    assert reviewd["deploy"]["replicas"] == 3
    assert reviewd["environment"]["REVIEWD_JOURNAL_BACKEND"] == "redis"
    assert "appendonly" in " ".join(compose["services"]["redis"]["command"])
    assert "container_name" not in reviewd and "ports" not in reviewd  # scaling never collides
