"""Hostile input: a slowloris and connection flood on the HTTP port; fuzzing of the four
parsers a stranger can reach; hostile events sent through the real server."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from reliability.outcome import Outcome, time_to_next_delivery
from reliability.processes import API_KEY, API_USER
from reliability.stream import running_stream

# ------------------------------------------------------------------ HTTP flood


def _healthz_ok(port: int) -> str | None:
    """None when /healthz answered 200 within 1 s, else what went wrong."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as answer:
            return None if answer.status == 200 else f"status {answer.status}"
    except (OSError, urllib.error.URLError) as error:
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def http_flood(workdir: Path, long: bool) -> Outcome:
    """Idle sockets, slowloris dribblers and a connect/close flood on the HTTP port while
    events flow; /healthz must answer within 1 s every time it is asked."""
    outcome = Outcome("HTTP slowloris + connection flood")
    idle_count, dribblers, flood = (1000, 300, 20000) if long else (500, 100, 2000)
    with running_stream(workdir, outcome) as stream:
        port = stream.daemon.http_port
        held: list[socket.socket] = []
        stop = threading.Event()

        def dribble() -> None:
            socks = []
            for _ in range(dribblers):
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                    socks.append(sock)
                except OSError:
                    pass
            while not stop.wait(0.5):
                for sock in socks:
                    try:
                        sock.sendall(b"X: y\r\n")
                    except OSError:
                        pass
            for sock in socks:
                sock.close()

        def connect_flood() -> None:
            for _ in range(flood):
                if stop.is_set():
                    return
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                except OSError:
                    pass

        workers = [threading.Thread(target=dribble), threading.Thread(target=connect_flood)]
        for _ in range(idle_count):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        for worker in workers:
            worker.start()
        failures = probes = 0
        kinds: dict[str, int] = {}
        peak_fds = 0
        deadline = time.monotonic() + (60 if long else 6)
        while time.monotonic() < deadline:
            probes += 1
            problem = _healthz_ok(port)
            if problem is not None:
                failures += 1
                kinds[problem] = kinds.get(problem, 0) + 1
            peak_fds = max(peak_fds, len(os.listdir(f"/proc/{stream.daemon.proc.pid}/fd")))
            time.sleep(0.1)
        outcome.recovered(time_to_next_delivery(stream.daemon, 30))
        stop.set()
        for worker in workers:
            worker.join()
        for sock in held:
            sock.close()
        outcome.faults += idle_count + dribblers + flood
        outcome.notes.append(
            f"/healthz within 1 s: {probes - failures}/{probes}; daemon fds peak {peak_fds}"
        )
        if failures:
            outcome.crashes += 0  # not a crash; a failed probe is reported in the notes
            outcome.notes.append(f"{failures} /healthz probe(s) failed: {kinds}")
    return outcome


# ------------------------------------------------------------------ fuzzing


def fuzz_parsers(workdir: Path, long: bool) -> Outcome:
    """Hypothesis, a fixed budget per target; anything but the documented error is a
    finding (counted in ``crashes`` and named in the notes)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from reviewd.api.event import expression, packet
    from reviewd.daemon import config
    from reviewd.devserver import query

    outcome = Outcome("fuzz: packet, expression, query, config")
    budget = 5000 if long else 300
    unexpected: list[str] = []

    def guard(target: str, call, expected: tuple[type[BaseException], ...]):
        def run(value) -> None:
            outcome.faults += 1
            try:
                call(value)
            except expected:
                pass
            except Exception as error:  # noqa: BLE001 - exactly what is being counted
                unexpected.append(
                    f"{target}: {type(error).__name__}: {error!s:.80} for {value!r:.80}"
                )

        return run

    common = settings(
        max_examples=budget, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    frames = st.one_of(st.text(), st.from_regex(r"[0-8]:[0-9]*\+?:[a-z/]*:.*", fullmatch=True))

    def decode_all(text: str) -> None:
        decoded = packet.decode(text)
        if decoded.type == packet.PacketType.EVENT:
            packet.parse_event(decoded)
        if decoded.type == packet.PacketType.ACK:
            packet.parse_ack(decoded)

    given(frames)(common(guard("packet", decode_all, (packet.PacketError,))))()
    expressions = st.one_of(
        st.text(),
        st.from_regex(
            r"(not )?[a-z.]{1,12}(=|!=|>|<|>=|<=)[a-z*\"']{0,8}( (and|or) \(?[a-z.]+=[a-z]*\)?)*",
            fullmatch=True,
        ),
    )

    def parse_and_match(text: str) -> None:
        compiled = expression.parse(text)
        compiled.match({"topic": "ftrack.update", "data": {"a": 1, "b": [1]}})

    given(expressions)(common(guard("expression", parse_and_match, (expression.ParseError,))))()
    queries = st.one_of(
        st.text(),
        st.from_regex(
            r"(select [a-z., ]+ from )?[A-Z][a-z]+( where [a-z.]+ (is|like|in|>|has) "
            r"[\"'a-z0-9()%]*)?( order by [a-z]+)?( limit [0-9]+)?",
            fullmatch=True,
        ),
    )
    given(queries)(common(guard("devserver query", query.parse, (query.QueryParseError,))))()

    def load_config(data: bytes) -> None:
        with tempfile.NamedTemporaryFile(suffix=".toml", delete=False, dir=workdir) as handle:
            handle.write(data)
        try:
            config.load(
                config_file=handle.name,
                environ={"FTRACK_SERVER": "http://127.0.0.1:9", "FTRACK_API_KEY": "k-1234"},
            )
        finally:
            os.unlink(handle.name)

    toml_like = st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda table, key, value: f"[{table}]\n{key} = {value}\n".encode(),
            st.sampled_from(
                [
                    "daemon",
                    "routing",
                    "server",
                    "journal",
                    "plugins",
                    "plugin",
                    "routing.plugins.x",
                    "x",
                ]
            ),
            st.sampled_from([s.key.split(".")[-1] for s in config.SETTINGS] + ["zz"]),
            st.one_of(
                st.integers().map(str),
                st.floats().map(repr),
                st.text(max_size=20).map(json.dumps),
                st.just("[1, 2]"),
                st.just("true"),
                st.just("{a = 1}"),
                st.just("1e999"),
            ),
        ),
    )
    workdir.mkdir(parents=True, exist_ok=True)
    given(toml_like)(common(guard("config", load_config, (config.ConfigError,))))()
    outcome.runs = 4
    outcome.crashes = len(unexpected)
    outcome.notes.extend(sorted(set(unexpected))[:10])
    return outcome


# ------------------------------------------------------------------ hostile events


def _hostile_frames() -> list[tuple[str, str]]:
    """(label, raw frame) pairs, built as text so that no encoder tidies them up."""

    def event(topic_json: str, body: str) -> str:
        return (
            '5:1+::{"name": "ftrack.event", "args": [{"topic": ' + topic_json + ", " + body + "}]}"
        )

    deep = '{"a": ' * 50000 + "1" + "}" * 50000
    moderate = '{"a": ' * 200 + "1" + "}" * 200
    return [
        ("deep nesting (50000)", event('"reliability.hostile"', '"data": ' + deep)),
        ("nesting (200)", event('"reliability.hostile"', '"data": ' + moderate)),
        (
            "huge payload (8 MB)",
            event('"reliability.hostile"', '"data": {"blob": "' + "x" * (8 << 20) + '"}'),
        ),
        (
            "large payload (400 kB)",
            event('"reliability.hostile"', '"data": {"blob": "' + "y" * 400_000 + '"}'),
        ),
        ("topic as number", event("123", '"data": {}')),
        ("data as text", event('"reliability.hostile"', '"data": "text"')),
        ("source as list", event('"reliability.hostile"', '"data": {}, "source": [1]')),
        ("id as number", event('"reliability.hostile"', '"data": {}, "id": 5')),
        ("target as list", event('"reliability.hostile"', '"data": {}, "target": []')),
        (
            "inReplyToEvent as object",
            event('"reliability.hostile"', '"data": {}, "inReplyToEvent": {"x": 1}'),
        ),
        ("lone surrogate", event('"reliability.hostile"', '"data": {"text": "\\ud800"}')),
        ("surrogate in topic", event('"reliability.\\udfff"', '"data": {}')),
        (
            "entities wrong type",
            event('"reliability.hostile"', '"data": {"entities": "nope", "user": 7}'),
        ),
    ]


def hostile_events(workdir: Path, long: bool) -> Outcome:
    """Each hostile frame sent by a raw client through the real server, between normal
    events: the server and the daemon survive and the normal stream is never lost."""
    from reviewd.api.event.connection import Connection

    outcome = Outcome("hostile events")
    with running_stream(workdir, outcome) as stream:
        rounds = 5 if long else 1
        for _ in range(rounds):
            for label, frame in _hostile_frames():
                sender = Connection(stream.server.url, API_USER, API_KEY)
                try:
                    sender.open()
                    sender.send(frame)
                except Exception as error:  # noqa: BLE001 - the server may refuse it
                    outcome.notes.append(f"{label}: sender saw {type(error).__name__}")
                finally:
                    sender.close()
                outcome.faults += 1
                if stream.server.proc.poll() is not None:
                    outcome.crashes += 1
                    outcome.notes.append(f"server died on {label}")
                    stream.server.start()
                outcome.recovered(time_to_next_delivery(stream.daemon, 30))
        refused = stream.daemon.log().count("journal write failed; event not dispatched")
        if refused:
            outcome.notes.append(
                f"{refused} event(s) refused by the journal with an error "
                "line (lone surrogate in the topic): not journaled, not "
                "delivered"
            )
    return outcome
