"""Lying servers: a bad answer gets a clear error and loses nothing.

A proxy, a half-upgraded server or a broken gateway can answer ``POST /api`` with
something that is not what PROTOCOL.md promises: too few or too many results, results
of the wrong shape, entities without a type, an old server version, a schema list that
is not one, an HTML error page, a body cut off half-way.  Each must raise one of
reviewd's own exceptions naming the problem (never a bare ``KeyError``, ``TypeError``
or ``JSONDecodeError``), must not show the API key, and a failed ``commit()`` must keep
the recorded operations so that a later commit can still send them.

The server here is a small ftrack look-alike on a real socket: honest until a test
tells it what lie to answer next.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reviewd.api.exception import (
    ConnectionFailedError,
    Error,
    ServerCompatibilityError,
    ServerError,
    UnrecognisedEntityTypeError,
)
from reviewd.api.session import Session

SECRET = "lying-server-secret-key-0042"

SCHEMAS = [
    {
        "id": "Task",
        "type": "object",
        "primary_key": ["id"],
        "required": ["name"],
        "immutable": ["id"],
        "computed": [],
        "default_projections": ["id", "name"],
        "properties": {"id": {"type": "string", "default": "{uid}"}, "name": {"type": "string"}},
    }
]


class Answer:
    """One raw HTTP answer: status, body, content type and the length to declare."""

    def __init__(
        self,
        body: bytes | str | object,
        status: int = 200,
        content_type: str = "application/json",
        declared_length: int | None = None,
    ):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.declared_length = declared_length


class LyingServer:
    """An ftrack look-alike that answers honestly unless a lie is queued.

    ``lie(answer_or_callable)`` makes the next matching request get that answer instead;
    a callable receives the batch and returns an :class:`Answer` (or None: be honest).
    """

    def __init__(self, version: str = "4.13.8", schemas: object = SCHEMAS) -> None:
        self.version = version
        self.schemas = schemas
        self.tasks: dict[str, dict] = {}
        self.batches: list[list[dict]] = []
        self.lies: list = []
        self.lock = threading.Lock()
        lying = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", 0))
                batch = json.loads(self.rfile.read(length))
                answer = lying.answer(batch)
                declared = answer.declared_length
                self.send_response(answer.status)
                self.send_header("content-type", answer.content_type)
                self.send_header(
                    "content-length", str(len(answer.body) if declared is None else declared)
                )
                if declared is not None:
                    self.send_header("connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def lie(self, answer) -> None:
        with self.lock:
            self.lies.append(answer)

    def answer(self, batch: list[dict]) -> Answer:
        with self.lock:
            self.batches.append(batch)
            while self.lies:
                lie = self.lies.pop(0)
                answer = lie(batch) if callable(lie) else lie
                if answer is not None:
                    return answer
            return Answer([self.honest(operation) for operation in batch])

    def honest(self, operation: dict) -> object:
        action = operation["action"]
        if action == "query_server_information":
            return {"version": self.version, "schema_hash": "lying"}
        if action == "query_schemas":
            return self.schemas
        if action == "query":
            return {
                "action": "query",
                "data": list(self.tasks.values()),
                "metadata": {"next": {"offset": None}},
            }
        if action in ("create", "update"):
            key = operation["entity_key"][0]
            task = self.tasks.setdefault(key, {"__entity_type__": "Task", "id": key})
            task.update(
                {k: v for k, v in operation["entity_data"].items() if k != "__entity_type__"}
            )
            return {"action": action, "data": dict(task)}
        if action == "delete":
            self.tasks.pop(operation["entity_key"][0], None)
            return {"action": "delete", "data": True}
        return {"exception": "UnknownActionError", "content": action}

    def __enter__(self) -> LyingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    with LyingServer() as lying:
        yield lying


@pytest.fixture
def session(server):
    session = Session(
        server.url, api_key=SECRET, api_user="jane", schema_cache_path=False, plugin_paths=[]
    )
    yield session
    if not session.closed:
        with session.operation_recording(False):
            session.rollback()
        session.close()


def assert_clear(caught: pytest.ExceptionInfo, *words: str, kind: type = Error) -> None:
    """A reviewd exception of *kind* whose message names *words* and hides the key."""
    error = caught.value
    assert isinstance(error, kind), f"{type(error).__name__}: {error}"
    assert type(error).__module__ == "reviewd.api.exception", type(error)
    message = str(error)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert SECRET not in message and SECRET not in repr(error)
    assert SECRET not in repr(getattr(error, "details", {}))


def results(*items) -> Answer:
    return Answer(list(items))


def make_two_tasks(session) -> list:
    first = session.create("Task", {"name": "one"})
    second = session.create("Task", {"name": "two"})
    assert len(session.recorded_operations) == 2
    return [first, second]


def assert_kept_then_sent(server, session, tasks) -> None:
    """The failed commit kept every operation; an honest commit sends them all."""
    assert len(session.recorded_operations) == 2
    assert session.created == tasks
    session.commit()
    assert [op["action"] for op in server.batches[-1]] == ["create", "create"]
    assert {op["entity_data"]["name"] for op in server.batches[-1]} == {"one", "two"}
    assert len(session.recorded_operations) == 0 and session.created == []
    assert {task["name"] for task in server.tasks.values()} == {"one", "two"}


# ---------------------------------------------------------------- result counts
def test_fewer_results_than_operations_fails_the_commit_and_keeps_it(server, session):
    tasks = make_two_tasks(session)
    server.lie(
        lambda batch: results(
            {
                "action": "create",
                "data": {"__entity_type__": "Task", **{"id": batch[0]["entity_key"][0]}},
            }
        )
    )
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "1 result", "2 operations", server.url)
    assert_kept_then_sent(server, session, tasks)


def test_more_results_than_operations_fails_the_commit_and_keeps_it(server, session):
    tasks = make_two_tasks(session)
    server.lie(lambda batch: results(*[{"action": "create", "data": True}] * 3))
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "3 results", "2 operations")
    assert_kept_then_sent(server, session, tasks)


def test_empty_answer_to_a_query_is_a_clear_error(server, session):
    server.lie(results())
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "0 results", "1 operation")


# ---------------------------------------------------------------- result shapes
@pytest.mark.parametrize("bad", [42, "created", None, ["a", "list"]])
def test_result_that_is_not_an_object_fails_the_commit_and_keeps_it(server, session, bad):
    tasks = make_two_tasks(session)
    server.lie(
        lambda batch: results(
            {
                "action": "create",
                "data": {"__entity_type__": "Task", "id": batch[0]["entity_key"][0]},
            },
            bad,
        )
    )
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "result 2", "create", "not an object")
    assert_kept_then_sent(server, session, tasks)


def test_result_without_data_fails_the_commit_and_keeps_it(server, session):
    tasks = make_two_tasks(session)
    server.lie(results({"action": "create"}, {"action": "create"}))
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "result 1", "create", "'data'")
    assert_kept_then_sent(server, session, tasks)


def test_error_object_in_place_of_a_result_fails_the_commit_and_keeps_it(server, session):
    tasks = make_two_tasks(session)
    server.lie(
        results(
            {"action": "create", "data": True},
            {
                "exception": "ValidationError",
                "content": f"bad name (key {SECRET})",
                "error_code": None,
            },
        )
    )
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "ValidationError", "bad name")
    assert_kept_then_sent(server, session, tasks)


def test_created_entity_of_unknown_type_fails_the_commit_and_keeps_it(server, session):
    tasks = make_two_tasks(session)
    server.lie(
        lambda batch: results(
            *[
                {
                    "action": "create",
                    "data": {"__entity_type__": "Spaceship", "id": op["entity_key"][0]},
                }
                for op in batch
            ]
        )
    )
    with pytest.raises(UnrecognisedEntityTypeError) as caught:
        session.commit()
    assert_clear(caught, "Spaceship")
    assert_kept_then_sent(server, session, tasks)


def test_deleting_commit_with_bad_result_keeps_the_delete(server, session):
    task = session.create("Task", {"name": "doomed"})
    session.commit()
    session.delete(task)
    server.lie(results("deleted"))
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "delete", "not an object")
    assert session.deleted == [task] and len(session.recorded_operations) == 1
    session.commit()
    assert server.batches[-1] == [
        {"action": "delete", "entity_type": "Task", "entity_key": [task["id"]]}
    ]
    assert server.tasks == {}


@pytest.mark.parametrize("bad", [42, "rows", ["a"]])
def test_query_result_that_is_not_an_object(server, session, bad):
    server.lie(results(bad))
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "query", "not an object")


def test_query_result_without_data(server, session):
    server.lie(results({"action": "query", "metadata": {"next": {"offset": None}}}))
    with pytest.raises(ServerError) as caught:
        session.query("Task").first()
    assert_clear(caught, "query", "'data'")


def test_query_data_that_is_not_a_list(server, session):
    server.lie(results({"action": "query", "data": {"rows": []}}))
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "query", "list")


def test_query_entities_without_entity_type(server, session):
    server.lie(
        results(
            {
                "action": "query",
                "data": [{"id": "1", "name": "typeless"}],
                "metadata": {"next": {"offset": None}},
            }
        )
    )
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "__entity_type__")


def test_query_entities_of_unknown_type(server, session):
    server.lie(
        results(
            {
                "action": "query",
                "data": [{"__entity_type__": "Spaceship", "id": "1"}],
                "metadata": {"next": {"offset": None}},
            }
        )
    )
    with pytest.raises(UnrecognisedEntityTypeError) as caught:
        session.query("Task").all()
    assert_clear(caught, "Spaceship")


@pytest.mark.parametrize("entity_type", [["Task"], {"id": "Task"}, 7])
def test_query_entities_whose_type_is_not_a_name(server, session, entity_type):
    server.lie(
        results(
            {
                "action": "query",
                "data": [{"__entity_type__": entity_type, "id": "1"}],
                "metadata": {"next": {"offset": None}},
            }
        )
    )
    with pytest.raises(Error) as caught:
        session.query("Task").all()
    assert_clear(caught, "__entity_type__")


def test_session_still_works_after_the_lies(server, session):
    server.lie(results({"action": "query", "data": [{"id": "1"}]}))
    with pytest.raises(ServerError):
        session.query("Task").all()
    task = session.create("Task", {"name": "after"})
    session.commit()
    assert session.query("Task").all() == [task]


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("version", ["3.3.10", "3.2.0", "2.0"])
def test_server_older_than_3_3_11_is_refused(version):
    with LyingServer(version=version) as server:
        with pytest.raises(ServerCompatibilityError) as caught:
            Session(
                server.url,
                api_key=SECRET,
                api_user="jane",
                schema_cache_path=False,
                plugin_paths=[],
            )
    assert_clear(caught, version, "3.3.11")
    assert [batch[0]["action"] for batch in server.batches] == ["query_server_information"]


@pytest.mark.parametrize("version", ["dev", "3.3.11", "4.13.8"])
def test_dev_and_supported_versions_are_accepted(version):
    with LyingServer(version=version) as server:
        with Session(
            server.url, api_key=SECRET, api_user="jane", schema_cache_path=False, plugin_paths=[]
        ) as session:
            assert session.server_version == version
            assert list(session.types) == ["Task"]


@pytest.mark.parametrize("information", [["4.13.8"], "4.13.8", None])
def test_server_information_that_is_not_an_object(information):
    with LyingServer() as server:
        server.lie(results(information))
        with pytest.raises(ServerCompatibilityError) as caught:
            Session(
                server.url,
                api_key=SECRET,
                api_user="jane",
                schema_cache_path=False,
                plugin_paths=[],
            )
    assert_clear(caught, "query_server_information")


@pytest.mark.parametrize(
    "schemas",
    [
        {"schemas": SCHEMAS},
        "Task",
        None,
        ["Task", "Note"],
        [{"type": "object", "properties": {}}],
        [{"id": "Task", "primary_key": ["id"], "properties": ["id", "name"]}],
    ],
)
def test_query_schemas_that_is_not_a_list_of_schemas(schemas, tmp_path):
    with LyingServer(schemas=schemas) as server:
        with pytest.raises(ServerCompatibilityError) as caught:
            Session(
                server.url,
                api_key=SECRET,
                api_user="jane",
                schema_cache_path=str(tmp_path),
                plugin_paths=[],
            )
    assert_clear(caught, "query_schemas")
    assert list(tmp_path.iterdir()) == [], "a bad schema list is never cached"


# ---------------------------------------------------------------- broken bodies
PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def test_html_502_on_commit_keeps_the_operations(server, session):
    tasks = make_two_tasks(session)
    server.lie(Answer(PAGE, status=502, content_type="text/html"))
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "HTTP 502", "not JSON", "502 Bad Gateway", server.url)
    assert_kept_then_sent(server, session, tasks)


def test_html_502_on_query(server, session):
    server.lie(Answer(PAGE, status=502, content_type="text/html"))
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "HTTP 502", "not JSON")


def _cut(batch) -> Answer:
    body = json.dumps(
        [
            {
                "action": "create",
                "data": {"__entity_type__": "Task", "id": op["entity_key"][0], "name": "x" * 50},
            }
            for op in batch
        ]
    ).encode()
    return Answer(body[: len(body) // 2])


def test_body_cut_off_mid_json_on_commit_keeps_the_operations(server, session):
    tasks = make_two_tasks(session)
    server.lie(_cut)
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert_clear(caught, "HTTP 200", "not JSON", "cut off", server.url)
    assert not isinstance(caught.value, ValueError)
    assert_kept_then_sent(server, session, tasks)


def test_query_body_cut_off_mid_json(server, session):
    for index in range(3):
        session.create("Task", {"id": f"t{index}", "name": f"task {index}"})
    session.commit()
    body = json.dumps(
        [
            {
                "action": "query",
                "data": list(server.tasks.values()),
                "metadata": {"next": {"offset": None}},
            }
        ]
    ).encode()
    server.lie(Answer(body[:-40]))
    with pytest.raises(ServerError) as caught:
        session.query("Task").all()
    assert_clear(caught, "not JSON", "cut off")


def test_connection_closed_before_the_declared_length(server, session):
    tasks = make_two_tasks(session)
    body = b'[{"action": "create", "data": {"__entity_type__": "Ta'
    server.lie(Answer(body, declared_length=len(body) * 4))
    with pytest.raises(ConnectionFailedError) as caught:
        session.commit()
    assert_clear(caught, "cut off", server.url)
    assert "Could not connect" not in str(caught.value)
    assert_kept_then_sent(server, session, tasks)
