"""The subscription/target expression language (PROTOCOL.md section 4)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewd.api.event import expression
from reviewd.api.event.expression import ParseError, parse

UPDATE = {
    "id": "e1",
    "topic": "ftrack.update",
    "data": {
        "pushToClient": True,
        "count": 5,
        "ratio": 2.5,
        "name": "sh010",
        "empty": "",
        "nothing": None,
        "nested": {"deep": {"er": "x"}},
        "items": ["a", "b"],
        "spaced": "In Progress",
    },
    "source": {"id": "hub-1", "user": {"username": "jane"}},
    "target": "",
    "in_reply_to_event": None,
}

# (expression, candidate, expected)
CASES = [
    # plain equality, missing keys
    ("topic=ftrack.update", UPDATE, True),
    ("topic=ftrack.updat", UPDATE, False),
    ("topic=ftrack.update.more", UPDATE, False),
    ("missing=ftrack.update", UPDATE, False),
    ("missing!=ftrack.update", UPDATE, False),
    ("data.missing=1", UPDATE, False),
    ("data.missing.deeper=1", UPDATE, False),
    ("topic.sub=x", UPDATE, False),  # indexing into a string is a missing key
    ("data.items.0=a", UPDATE, False),  # lists are not indexed by position
    ("source.user.username=jane", UPDATE, True),
    ("source.user.username!=jane", UPDATE, False),
    ("source.user.username!=john", UPDATE, True),
    ("data.nested.deep.er=x", UPDATE, True),
    # wildcards: '=' with trailing '*' is "occurs in"
    ("topic=ftrack.*", UPDATE, True),
    ("topic=*", UPDATE, True),
    ("topic=update*", UPDATE, True),
    ("topic=ftrack.action.*", UPDATE, False),
    ("topic!=ftrack.*", UPDATE, True),  # only '=' knows wildcards
    ("data.count=5*", UPDATE, True),
    ("data.missing=*", UPDATE, False),
    # quoting
    ('data.spaced="In Progress"', UPDATE, True),
    ("data.spaced='In Progress'", UPDATE, True),
    ('data.spaced="In Prog"', UPDATE, False),
    ('data.empty=""', UPDATE, True),
    ('source.user.username="jane" and topic="ftrack.update"', UPDATE, True),
    (r'data.name="sh\"010"', UPDATE, False),
    ('data.name = "sh010"', UPDATE, True),
    # non-string candidate values
    ("data.pushToClient=True", UPDATE, True),
    ("data.pushToClient=true", UPDATE, True),
    ("data.pushToClient=False", UPDATE, False),
    ("data.pushToClient!=False", UPDATE, True),
    ("data.count=5", UPDATE, True),
    ("data.count=5.0", UPDATE, True),
    ("data.count>4", UPDATE, True),
    ("data.count>=5", UPDATE, True),
    ("data.count<5", UPDATE, False),
    ("data.count<=10", UPDATE, True),  # numeric, not lexical ("5" > "10")
    ("data.count=five", UPDATE, False),
    ("data.count!=five", UPDATE, True),
    ("data.ratio>2", UPDATE, True),
    ("data.nothing=None", UPDATE, False),
    ("data.nothing!=None", UPDATE, True),
    ("data.nested=x", UPDATE, False),
    ("data.nested>x", UPDATE, False),
    # string ordering is lexical
    ("data.name>sh009", UPDATE, True),
    ("data.name<sh009", UPDATE, False),
    ("data.name>=sh010", UPDATE, True),
    # boolean structure and precedence
    ("topic=ftrack.update and source.user.username=jane", UPDATE, True),
    ("topic=ftrack.update and source.user.username=john", UPDATE, False),
    ("topic=nope or source.user.username=jane", UPDATE, True),
    ("topic=nope or source.user.username=john", UPDATE, False),
    ("not topic=nope", UPDATE, True),
    ("not not topic=ftrack.update", UPDATE, True),
    ("NOT topic=ftrack.update", UPDATE, False),
    ("topic=nope OR topic=ftrack.update AND data.count=5", UPDATE, True),
    ("topic=nope or topic=ftrack.update and data.count=6", UPDATE, False),
    ("(topic=nope or topic=ftrack.update) and data.count=6", UPDATE, False),
    ("not (topic=nope or data.count=6)", UPDATE, True),
    ("not topic=nope and not data.count=6", UPDATE, True),
    (
        'topic=ftrack.update and (source.user.username="jane" or not data.pushToClient=True)',
        UPDATE,
        True,
    ),
    ("((((topic=ftrack.update))))", UPDATE, True),
    ("a=1 and b=2 and c=3 or d=4", {"a": "1", "b": "2", "c": "3"}, True),
    ("a=1 and b=2 and c=3 or d=4", {"a": "1", "b": "2", "d": "4"}, True),
    ("a=1 and b=2 and c=3 or d=4", {"a": "1", "b": "2"}, False),
    # keywords used as keys and values
    ("not=1", {"not": "1"}, True),
    ("and=or", {"and": "or"}, True),
    # bare-word value characters
    ("email=jane.doe+ftrack@example.com", {"email": "jane.doe+ftrack@example.com"}, True),
    ("path=/a/b-c_d,e", {"path": "/a/b-c_d,e"}, True),
    # targets are matched against subscriber metadata
    ("id=hub-1", {"id": "hub-1", "applicationId": "x"}, True),
    ("id=hub-1", {"applicationId": "x"}, False),
    # empty and whitespace match everything
    ("", UPDATE, True),
    ("   ", {}, True),
    # non-mapping candidates
    ("topic=a", {"topic": ["a"]}, False),
]


@pytest.mark.parametrize(("text", "candidate", "expected"), CASES)
def test_expression_table(text, candidate, expected):
    assert parse(text).match(candidate) is expected


def test_expression_table_is_large_enough():
    assert len(CASES) >= 40


def test_expression_matches_event_objects_too():
    from reviewd.api.event.base import Event

    event = Event("ftrack.update", data={"x": "1"}, source={"user": {"username": "jane"}})
    assert parse("topic=ftrack.update and data.x=1 and source.user.username=jane").match(event)


def test_expression_matches_wire_fixture(fixtures_dir):
    with open(os.path.join(fixtures_dir, "events", "ftrack.update.task-status.json")) as fh:
        wire = json.load(fh)
    assert parse("topic=ftrack.update").match(wire)
    assert parse("topic=ftrack.*").match(wire)
    assert not parse("topic=ftrack.action.launch").match(wire)


MALFORMED = [
    ("topic", 5),
    ("topic=", 6),
    ("=x", 0),
    ("topic==x", 6),
    ("(topic=x", 8),
    ("topic=x)", 7),
    ("topic=x topic=y", 8),
    ("topic=x and", 11),
    ("topic=x or or topic=y", 14),  # "or" after "or" is read as a key
    ("not", 3),
    ("()", 1),
    ('topic="open', 6),
    ("data-x=1", 0),
    ("topic=a!b", 7),
    ("topic ~ x", 6),
    ("topic=x andtopic=y", 8),
]


@pytest.mark.parametrize(("text", "position"), MALFORMED)
def test_expression_rejects_malformed_with_position(text, position):
    with pytest.raises(ParseError) as info:
        parse(text)
    error = info.value
    assert error.position == position
    assert error.expression == text
    assert f"position {position}" in str(error)


def test_expression_error_names_the_offending_token():
    with pytest.raises(ParseError, match="found 'topic'"):
        parse("topic=x topic=y")
    with pytest.raises(ParseError, match="after key 'topic'"):
        parse("topic x")


def test_expression_parse_error_is_value_error_and_exported():
    import reviewd.api.exception

    assert issubclass(ParseError, ValueError)
    assert reviewd.api.exception.ParseError is ParseError


def test_expression_depth_is_limited_with_parse_error():
    deep = "(" * 500 + "a=1" + ")" * 500
    with pytest.raises(ParseError, match="nested deeper"):
        parse(deep)
    with pytest.raises(ParseError, match="nested deeper"):
        parse("not " * 500 + "a=1")
    ok = "(" * (expression.MAX_DEPTH - 1) + "a=1" + ")" * (expression.MAX_DEPTH - 1)
    assert parse(ok).match({"a": "1"})


def test_expression_non_text_input_is_parse_error():
    with pytest.raises(ParseError):
        parse(None)  # type: ignore[arg-type]


def test_expression_is_cached_by_text():
    assert parse("topic=cached.one") is parse("topic=cached.one")


def test_expression_topics_hint():
    assert parse("topic=a").topics == frozenset({"a"})
    assert parse("topic=a and data.x=1").topics == frozenset({"a"})
    assert parse("topic=a or topic=b").topics == frozenset({"a", "b"})
    assert parse("topic=a or data.x=1").topics is None
    assert parse("topic=a*").topics is None
    assert parse("not topic=a").topics is None
    assert parse("").topics is None
    assert parse("topic=a and topic=b").topics == frozenset()


@given(st.text(max_size=80))
@settings(max_examples=400)
def test_expression_parse_raises_only_parse_error(text):
    try:
        compiled = parse(text)
    except ParseError as error:
        assert 0 <= error.position <= len(text)
        return
    # Whatever parsed must also match without raising.
    assert compiled.match(UPDATE) in (True, False)
    assert compiled.match({}) in (True, False)


_ALPHABET = st.sampled_from(
    [
        "topic",
        "data.x",
        "=",
        "!=",
        ">",
        "<=",
        "(",
        ")",
        " and ",
        " or ",
        "not ",
        '"a b"',
        "'q'",
        "1",
        "*",
        "x*",
        " ",
    ]
)


@given(st.lists(_ALPHABET, max_size=25).map("".join))
@settings(max_examples=400)
def test_expression_parse_grammar_fragments_raise_only_parse_error(text):
    try:
        compiled = parse(text)
    except ParseError:
        return
    candidate = {"topic": "a b", "data": {"x": 1}}
    assert compiled.match(candidate) in (True, False)


def _bound_result(compiled, candidate):
    remainder = compiled.bind("topic", candidate["topic"])
    return remainder if isinstance(remainder, bool) else remainder(candidate)


@pytest.mark.parametrize(
    ("text", "candidate", "expected"),
    [case for case in CASES if isinstance(case[1].get("topic"), str)],
)
def test_expression_bind_topic_agrees_with_match(text, candidate, expected):
    assert _bound_result(parse(text), candidate) is expected


def test_expression_bind_simplifies():
    assert parse("topic=a").bind("topic", "a") is True
    assert parse("topic=a").bind("topic", "b") is False
    assert parse("topic=a*").bind("topic", "xay") is True
    assert parse("not topic=a").bind("topic", "a") is False
    assert parse("topic=a or data.x=1").bind("topic", "a") is True
    assert parse("").bind("topic", "a") is True
    remainder = parse("topic=a and data.x=1").bind("topic", "a")
    assert remainder({"data": {"x": "1"}}) and not remainder({"data": {"x": "2"}})
    with pytest.raises(ValueError):
        parse("topic=a").bind("data.x", "1")


@given(
    st.lists(_ALPHABET, max_size=25).map("".join),
    st.sampled_from(["a b", "topic", "x", "q", "1", ""]),
    st.sampled_from([{}, {"x": 1}, {"x": "1"}, {"x": "a b"}]),
)
@settings(max_examples=400)
def test_expression_bind_agrees_with_match_property(text, topic, data):
    try:
        compiled = parse(text)
    except ParseError:
        return
    candidate = {"topic": topic, "data": data}
    assert _bound_result(compiled, candidate) == compiled.match(candidate)
