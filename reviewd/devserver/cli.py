"""``reviewd devserver``: run the embedded ftrack-compatible server standalone.

    reviewd devserver --host 127.0.0.1 --port 8765 [--data FILE.sqlite] [--seed demo|empty]
                      [--schema FILE] [--api-user USER] [--api-key KEY] [--simulate RATE]
    reviewd devserver emit ...        (publish an event; see ``reviewd devserver emit -h``)

It prints the URL, user and API key to put in ``FTRACK_SERVER``/``FTRACK_API_USER``/
``FTRACK_API_KEY`` and serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from reviewd.devserver.schema import SchemaError

EX_CONFIG = 78


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewd devserver",
        description="Run an ftrack-compatible development server (HTTP API and event hub).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0: any free port)")
    parser.add_argument(
        "--data", metavar="FILE", help="SQLite file that keeps data across restarts"
    )
    parser.add_argument(
        "--seed",
        choices=("demo", "empty"),
        default="demo",
        help="data for a new store (default: demo production)",
    )
    parser.add_argument("--schema", metavar="FILE", help="serve this schema list (JSON) instead")
    parser.add_argument(
        "--api-user",
        default=os.environ.get("REVIEWD_DEVSERVER_API_USER"),
        help="API user to accept (env REVIEWD_DEVSERVER_API_USER; default admin)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("REVIEWD_DEVSERVER_API_KEY"),
        help="API key to accept (env REVIEWD_DEVSERVER_API_KEY; default random)",
    )
    parser.add_argument(
        "--simulate",
        type=float,
        metavar="RATE",
        help="make about RATE random production changes per second",
    )
    parser.add_argument("--heartbeat-interval", type=float, default=10.0)
    parser.add_argument("--heartbeat-timeout", type=float, default=25.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "emit":
        from reviewd.devserver.emit import main as emit_main

        return emit_main(argv[1:])
    args = _parser().parse_args(argv)
    from reviewd.devserver.server import DevServer

    server = DevServer(
        data=args.data,
        seed=args.seed,
        schema=args.schema,
        host=args.host,
        port=args.port,
        api_user=args.api_user,
        api_key=args.api_key,
        simulate=args.simulate,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
    )
    try:
        server.start()
    except SchemaError as exc:
        sys.stderr.write(f"reviewd devserver: {exc}\n")
        return EX_CONFIG
    except OSError as exc:
        sys.stderr.write(
            f"reviewd devserver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port\n"
        )
        return EX_CONFIG
    stop = threading.Event()

    def request_stop(signum: Any, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    sys.stdout.write(
        f"reviewd devserver listening on {server.url}\n"
        f"  FTRACK_SERVER={server.url}\n"
        f"  FTRACK_API_USER={server.api_user}\n"
        f"  FTRACK_API_KEY={server.api_key}\n"
        f"  data: {args.data or 'in memory (lost on exit)'}\n"
    )
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            if not server.running:
                sys.stderr.write("reviewd devserver: the server thread stopped unexpectedly\n")
                return 1
    finally:
        server.stop()
    sys.stdout.write("reviewd devserver stopped\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
