"""``reviewd devserver emit``: publish a server-originated event on a running devserver.

This plays the ftrack web UI for demos and tests: it sends, say, an
``ftrack.action.discover`` that the plugins connected to the devserver receive, and
prints the reply one of them sends back.

How it reaches the server: the devserver runs in another process, so this command
POSTs ``{"topic", "data", "target", "wait_reply"}`` to ``/devserver/emit`` (mounted by
:meth:`reviewd.devserver.events.EventServer.add_routes`), authenticated with the same
``ftrack-user`` / ``ftrack-api-key`` headers as ``/api``.  The server publishes the
event as its own (``source.applicationId = "ftrack.client.web"``) and, with
``--wait-reply``, holds the request open until the first ``ftrack.meta.reply`` to it
arrives.  A socket.io client would work too, but would have to stay subscribed for the
reply and would appear as one more hub to the plugins under test.

Exit codes: 0 sent (and, with ``--wait-reply``, answered; the reply is printed as JSON),
1 no reply in time, 2 usage, 70 the reply says the handler failed (``success: false``, as
the daemon answers an action whose handler raised: the reply is printed and its message
said on stderr), 65 ``--data`` is not a JSON object or the server refused
the event, 69 server unreachable, 77 credentials refused, 78 server/user/key missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

import requests

from reviewd.devserver.errors import redact, register_secret

EXIT_OK = 0
EXIT_NO_REPLY = 1
EXIT_HANDLER_FAILED = 70
EXIT_DATAERR = 65
EXIT_UNAVAILABLE = 69
EXIT_NOPERM = 77
EXIT_CONFIG = 78


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewd devserver emit",
        description="Publish an event on a running reviewd devserver, as the ftrack web UI "
        "would, and optionally print the reply.",
    )
    parser.add_argument("topic", help="event topic, e.g. ftrack.action.discover")
    parser.add_argument("--data", default="{}", help="event data as a JSON object")
    parser.add_argument("--target", default="", help="target expression, e.g. applicationId=x")
    parser.add_argument(
        "--source-user",
        default=None,
        metavar="NAME",
        help="send as this user (source.user with its id), as when that "
        "person clicks in the web UI (default: a 'devserver' user)",
    )
    parser.add_argument(
        "--wait-reply",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait this long for a reply and print it as JSON",
    )
    parser.add_argument("--server", default=None, help="server URL (default: $FTRACK_SERVER)")
    parser.add_argument("--api-user", default=None, help="API user (default: $FTRACK_API_USER)")
    parser.add_argument(
        "--api-key", default=None, help="API key (default: $FTRACK_API_KEY or $FTRACK_APIKEY)"
    )
    return parser


def main(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command; *argv* may start with the word ``emit`` or directly with TOPIC."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "emit":
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)

    def fail(code: int, message: str) -> int:
        stderr.write(f"reviewd devserver emit: {redact(message)}\n")
        return code

    server = (args.server or os.environ.get("FTRACK_SERVER") or "").rstrip("/")
    user = args.api_user or os.environ.get("FTRACK_API_USER")
    key = args.api_key or os.environ.get("FTRACK_API_KEY") or os.environ.get("FTRACK_APIKEY")
    register_secret(key)
    missing = [
        name
        for name, value in (
            ("--server/FTRACK_SERVER", server),
            ("--api-user/FTRACK_API_USER", user),
            ("--api-key/FTRACK_API_KEY", key),
        )
        if not value
    ]
    if missing:
        return fail(
            EXIT_CONFIG,
            f"missing {', '.join(missing)}; pass the flag or set the "
            "environment variable (the devserver prints all three when it starts).",
        )
    try:
        data = json.loads(args.data)
    except ValueError as error:
        return fail(EXIT_DATAERR, f"--data is not valid JSON ({error}); nothing was sent.")
    if not isinstance(data, dict):
        return fail(
            EXIT_DATAERR,
            "--data must be a JSON object, e.g. '{\"selection\": []}'; nothing was sent.",
        )
    if args.wait_reply is not None and args.wait_reply < 0:
        return fail(2, "--wait-reply must be >= 0 seconds.")

    body = {"topic": args.topic, "data": data, "target": args.target, "wait_reply": args.wait_reply}
    if args.source_user:
        body["source_user"] = args.source_user
    try:
        response = requests.post(
            f"{server}/devserver/emit",
            json=body,
            headers={"ftrack-user": user, "ftrack-api-key": key},
            timeout=(10, (args.wait_reply or 0) + 30),
        )
    except requests.RequestException as error:
        return fail(
            EXIT_UNAVAILABLE,
            f"cannot reach the devserver at {server} ({error}); "
            "is `reviewd devserver` running there?",
        )
    try:
        answer = response.json()
    except ValueError:
        return fail(
            EXIT_UNAVAILABLE,
            f"{server} answered HTTP {response.status_code} with a "
            "body that is not JSON; is it a reviewd devserver?",
        )
    if response.status_code == 401:
        return fail(EXIT_NOPERM, f"the devserver refused user {user!r} or its API key.")
    if not isinstance(answer, dict) or "exception" in answer or response.status_code != 200:
        content = answer.get("content") if isinstance(answer, dict) else answer
        return fail(EXIT_DATAERR, f"the devserver refused the event: {content}")

    if args.wait_reply:
        reply = answer.get("reply")
        if reply is None:
            return fail(
                EXIT_NO_REPLY,
                f"no reply to {args.topic} within {args.wait_reply:g} s "
                f"(event id {answer['event']['id']}): no plugin subscribed to it "
                "answered; a handler may still be running, or returned nothing",
            )
        stdout.write(json.dumps(reply, indent=2, sort_keys=True) + "\n")
        data = reply.get("data") if isinstance(reply, dict) else None
        if isinstance(data, dict) and data.get("success") is False:
            stdout.flush()
            message = data.get("message") or "no message"
            return fail(EXIT_HANDLER_FAILED, f"the handler of {args.topic} failed: {message}")
    else:
        stdout.write(json.dumps(answer["event"], sort_keys=True) + "\n")
    stdout.flush()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
