"""The server under odd input and concurrent use: it answers, and it never corrupts data."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewd.devserver.errors import ApiError
from reviewd.devserver.query import Query, parse
from tests.devserver.conftest import Api, wait_for

QUERY_WORDS = st.sampled_from(
    [
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "is",
        "in",
        "has",
        "any",
        "(",
        ")",
        ",",
        "name",
        "status.name",
        "Task",
        "'x'",
        '"y"',
        "1",
        "None",
        "order",
        "by",
        "limit",
        "5",
        ">",
        "<=",
        "like",
        "%",
        "!",
        "offset",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(QUERY_WORDS, max_size=14))
def test_parser_never_fails_with_anything_but_a_parse_error(words):
    text = " ".join(words)
    try:
        result = parse(text)
    except ApiError as error:
        assert error.exception == "ParseError"
        assert "position" in error.content or "string" in error.content
    else:
        assert isinstance(result, Query)


def test_concurrent_writers_and_readers_lose_nothing(devserver):
    api = Api(devserver)
    (project,) = api.query("select id from Project")
    user = api.query(f"select id from User where username is {devserver.api_user}")[0]["id"]
    errors = []

    def writer(number: int) -> None:
        try:
            for batch in range(10):
                devserver.execute_batch(
                    [
                        {
                            "action": "create",
                            "entity_type": "Note",
                            "entity_key": [None],
                            "entity_data": {
                                "__entity_type__": "Note",
                                "content": f"w{number}-{batch}-{i}",
                                "parent_id": project["id"],
                                "parent_type": "Project",
                                "user_id": user,
                            },
                        }
                        for i in range(5)
                    ],
                    devserver.api_user,
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    def reader() -> None:
        reader_api = Api(devserver)
        try:
            for _ in range(20):
                assert isinstance(reader_api.query("select content from Note"), list)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    contents = [n["content"] for n in api.query("select content from Note where content like 'w%'")]
    assert len(contents) == len(set(contents)) == 4 * 10 * 5


def test_simulated_production_changes_data_through_the_api():
    from reviewd.devserver import DevServer

    with DevServer(simulate=50.0) as server:
        require_simulator = server.simulator is not None
        assert require_simulator
        before = server.action_counts["update"] + server.action_counts["create"]
        wait_for(lambda: server.action_counts["update"] + server.action_counts["create"] > before)
    assert not server.running
