"""Deployment files: the systemd unit verifies, the examples parse, dashboards and alerts
only use metrics the daemon really exports, the Dockerfile keeps its promises."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

from reviewd.daemon import config as cfg
from reviewd.daemon.metrics import Metrics
from tests.conftest import require

from .daemon_harness import REPO


def test_systemd_analyze_verify_passes(tmp_path):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed")
    unit = (REPO / "reviewd.service").read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=reviewd",
        "StateDirectory=reviewd",
        "LoadCredential=ftrack_api_key:",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestartPreventExitStatus=78",
    ):
        assert line in unit, line
    # verify checks that ExecStart's binary exists: point it at this checkout's entry point
    # (an installed system has /usr/local/bin/reviewd; nothing else in the unit changes).
    entry = REPO / ".venv" / "bin" / "reviewd"
    target = str(entry) if entry.exists() else shutil.which("reviewd") or sys.executable
    copy = tmp_path / "reviewd.service"
    copy.write_text(unit.replace("/usr/local/bin/reviewd", target))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    relevant = [line for line in result.stderr.splitlines() if "reviewd.service" in line]
    assert relevant == [], relevant


def exported_metric_names() -> set[str]:
    metrics = Metrics()
    metrics.add_snapshot(
        lambda: {
            "hub_connected": 1,
            "ready": 1,
            "uptime": 1,
            "journal_size": 1,
            "journal": {"pending": 1},
            "plugins": {"p": {"queue_depth": 0, "in_flight": 0, "stuck": None}},
        }
    )
    names = set()
    for family in metrics.registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def test_dashboard_and_alerts_use_only_exported_metrics():
    exported = exported_metric_names()
    for name in ("deploy/grafana-dashboard.json", "deploy/prometheus-alerts.yml"):
        text = (REPO / name).read_text()
        used = set(re.findall(r"\breviewd_[a-z_]+", text))
        assert used, name
        assert used <= exported, f"{name} uses unknown metrics: {sorted(used - exported)}"
    dashboard = json.loads((REPO / "deploy/grafana-dashboard.json").read_text())
    assert len(dashboard["panels"]) >= 10


def test_example_config_and_env_file_are_valid(tmp_path):
    key = tmp_path / "key"
    key.write_text("deploytest-example-key\n")
    config = cfg.load(
        environ={"REVIEWD_API_KEY_FILE": str(key)},
        config_file=str(REPO / "deploy/reviewd.toml.example"),
    )
    assert config.routing_for("review_digest")["hard_timeout"] == 900
    assert config.per_plugin_arguments["verdicts_to_status"] == {"approved_status": "Approved"}
    env = {}
    for line in (REPO / "deploy/reviewd.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    env["REVIEWD_API_KEY_FILE"] = str(key)
    config = cfg.load(environ=env, config_file=None)
    assert config.hard_timeout == 300 and config.grace_period == 30


def test_dockerfile_promises():
    text = (REPO / "Dockerfile").read_text()
    # An exact base image (Python release and Debian release), never a floating tag.
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim-[a-z]+$", text, re.M)
    # Dependencies in a layer of their own, before the code is copied in.
    assert (
        text.index("COPY pyproject.toml")
        < text.index("pip install -r")
        < text.index("COPY reviewd ")
        < text.index("pip install --no-deps --no-build-isolation .")
    )
    assert re.search(r"^USER reviewd", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r"^STOPSIGNAL SIGTERM", text, re.M)
    assert re.search(r'^ENTRYPOINT \["reviewd"\]', text, re.M)  # exec form
    assert re.search(r'^VOLUME \["/var/lib/reviewd"\]', text, re.M)
    assert "/etc/reviewd/plugins" in text
    compose = (REPO / "deploy/docker-compose.yml").read_text()
    assert "redis" in compose and "reviewd-state:/var/lib/reviewd" in compose
    for image in re.findall(r"^\s*image:\s*(\S+)", compose, re.M):
        tag = image.rpartition(":")[2]
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"compose image not pinned: {image}"
    drop_in = (REPO / "deploy/reviewd.service.d/plugins.conf.example").read_text()
    assert drop_in.startswith("#") and "[Service]" in drop_in


def test_operations_doc_covers_every_setting_and_metric():
    text = (REPO / "docs/operations.md").read_text()
    for setting in cfg.SETTINGS:
        assert f"`{setting.key}`" in text, setting.key
        for var in setting.env:
            assert f"`{var}`" in text, var
    for name in exported_metric_names():
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert f"`{base}`" in text or f"`{name}`" in text, name
