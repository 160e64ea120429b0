"""Building and running reviewd's container image with podman, on a machine that reaches
Debian's package mirrors and a Python package index but no container registry.

The recipe (issue 15): podman with runc and the cgroupfs manager (``default_ulimits = []``
under ``[containers]`` in ``/etc/containers/containers.conf``, written by ``.ci/run``);
the Dockerfile's base image is stood in for by a Debian bookworm root filesystem made
with mmdebstrap (python3, pip, venv, CA certificates), imported, with
``EXTERNALLY-MANAGED`` removed so pip installs system-wide as in the official image, and
tagged with the base image's exact name; the build never pulls and reaches the package
index through the host network with the host's CA bundle and a ``pip.conf`` naming it.

The stand-in is built once per machine and reused while podman still has it: making it
costs about a minute, the suite's build reuses it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PACKAGES = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates"


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]


def podman(
    *args: str, timeout: float = 600, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, input=input_text
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def base_image_name() -> str:
    """The ``FROM`` of the Dockerfile, fully qualified as podman stores it."""
    match = re.search(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has no FROM line"
    name = match.group(1)
    if "/" not in name.split(":")[0]:
        name = "docker.io/library/" + name
    return name


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base_image() -> tuple[str, float]:
    """The stand-in base image's name and the seconds spent making it (0 when reused)."""
    name = base_image_name()
    if image_exists(name):
        return name, 0.0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reviewd-base-") as tmp:
        tar = os.path.join(tmp, "base.tar")
        subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=apt", f"--include={PACKAGES}", "bookworm", tar],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        imported = podman("import", tar, "localhost/reviewd-base-import:latest").stdout.strip()
    container = f"reviewd-base-prep-{os.getpid()}"
    try:
        podman(
            "run",
            "--name",
            container,
            "--network=host",
            imported.splitlines()[-1],
            "sh",
            "-c",
            "rm -f /usr/lib/python3*/EXTERNALLY-MANAGED",
        )
        podman("commit", "--format", "docker", "--change", 'CMD ["python3"]', container, name)
    finally:
        podman("rm", "-f", container, check=False)
        podman("rmi", "localhost/reviewd-base-import:latest", check=False)
    return name, time.monotonic() - started


def build_image(tag: str, pip_conf: Path) -> float:
    """Build the Dockerfile into *tag*; the seconds it took."""
    pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
    started = time.monotonic()
    podman(
        "build",
        "--pull=never",
        "--format",
        "docker",
        "--network=host",
        "-v",
        f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "-v",
        f"{pip_conf}:/etc/pip.conf:ro",
        "-t",
        tag,
        "-f",
        str(REPO / "Dockerfile"),
        str(REPO),
        timeout=1800,
    )
    return time.monotonic() - started
