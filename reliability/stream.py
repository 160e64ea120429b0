"""The running system most scenarios share: server, optional proxy, daemon, publisher."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reliability.load import Publisher
from reliability.outcome import Outcome, account, settle
from reliability.processes import DaemonProcess, ServerProcess, wait_until
from reliability.proxy import FaultProxy

#: A recorder that also asks the API for something on every event, so that faults on
#: the API socket reach a handler (it fails, the router retries it).
QUERYING_RECORDER = """
import os

OUT = os.environ["RELIABILITY_OUT"]

def register(session, **kwargs):
    def record(event):
        session.query("select name from Project").first()
        with open(OUT, "a") as handle:
            handle.write(str(event["id"]) + "\\n")
    session.event_hub.subscribe("topic=reliability.*", record)
"""


@dataclass
class Stream:
    server: ServerProcess
    daemon: DaemonProcess
    publisher: Publisher
    proxy: FaultProxy | None


def wait_flowing(daemon: DaemonProcess, timeout: float = 60.0) -> None:
    before = len(daemon.handled())
    wait_until(lambda: len(daemon.handled()) > before, timeout, "events to flow", 0.05)


@contextlib.contextmanager
def running_stream(
    workdir: Path,
    outcome: Outcome,
    *,
    proxy: bool = False,
    rate: float = 40.0,
    plugins: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stream]:
    """Start everything, yield it, then stop the publisher, let the daemon finish what
    the journal holds and account for every event in *outcome*."""
    (workdir / "server").mkdir(parents=True, exist_ok=True)
    (workdir / "daemon").mkdir(parents=True, exist_ok=True)
    server = ServerProcess(workdir / "server").start()
    fault_proxy = FaultProxy(("127.0.0.1", server.port)).start() if proxy else None
    daemon = DaemonProcess(
        workdir / "daemon",
        fault_proxy.url if fault_proxy else server.url,
        plugins=plugins,
        extra_env=extra_env,
    )
    publisher = None
    try:
        daemon.start()
        daemon.wait_ready()
        publisher = Publisher(server.url, rate).start()
        wait_flowing(daemon)
        yield Stream(server, daemon, publisher, fault_proxy)
        publisher.stop()
        if fault_proxy is not None:
            outcome.faults += fault_proxy.faults_injected
        settle(daemon, sent=publisher.ids)
        if not daemon.alive():
            outcome.crashes += 1
            outcome.notes.append(f"daemon exited {daemon.proc.returncode}")
        account(outcome, daemon, publisher.sent)
        outcome.runs += 1
    finally:
        if publisher is not None:
            publisher.close()
        daemon.stop()
        if fault_proxy is not None:
            fault_proxy.stop()
        server.stop()
