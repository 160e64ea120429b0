"""The ftrack_api counterparts under reviewd/api/ that work without a server:
sequences, data objects, the disk accessor, structures, Memoiser, inspection,
expressions' object model, collections in detached mode."""

from __future__ import annotations

import copy
import operator
import os

import pytest

from reviewd.api import sequences
from reviewd.api.accessor.disk import DiskAccessor
from reviewd.api.cache import Memoiser, MemoryCache, memoise_decorator
from reviewd.api.data import String
from reviewd.api.event.expression import All, Any, Condition, Not, ParseError, Parser
from reviewd.api.exception import (
    AccessorContainerNotEmptyError,
    AccessorFilesystemPathError,
    AccessorResourceNotFoundError,
)
from reviewd.api.mixin import mixin


def test_sequence_notation_parses_padding_ranges_and_members():
    parsed = sequences.parse("/r/shot.%04d.exr [1-3, 7]")
    assert parsed.indexes == (1, 2, 3, 7)
    assert parsed.padding == 4
    assert parsed.pattern == "/r/shot.%04d.exr"
    assert parsed.members[-1] == "/r/shot.0007.exr"
    assert sequences.parse("/r/plain.exr") is None
    assert sequences.parse("/r/f.%d.png [9]").members == ["/r/f.9.png"]
    with pytest.raises(ValueError, match="backwards"):
        sequences.parse("/r/f.%d.png [9-3]")


def test_string_data_reads_back_what_was_written_text_or_bytes():
    text = String("héllo")
    assert text.read() == "héllo"
    binary = String(b"\x00\x01")
    assert binary.read() == b"\x00\x01"
    text.close()
    assert text.closed


def test_disk_accessor_round_trip_and_errors(tmp_path):
    accessor = DiskAccessor(str(tmp_path))
    accessor.make_container("a/b")
    handle = accessor.open("a/b/file.txt", "wb")
    handle.write(b"data")
    handle.close()
    assert accessor.is_file("a/b/file.txt") and accessor.is_container("a/b")
    assert accessor.list("a/b") == ["a/b/file.txt"]
    assert accessor.get_container("a/b/file.txt") == "a/b"
    with pytest.raises(AccessorContainerNotEmptyError):
        accessor.remove("a/b")
    accessor.remove("a/b/file.txt")
    with pytest.raises(AccessorResourceNotFoundError):
        accessor.remove("a/b/file.txt")
    with pytest.raises(AccessorFilesystemPathError):
        accessor.get_filesystem_path("/somewhere/else")
    assert os.path.isdir(tmp_path / "a" / "b")


def test_memoiser_shares_positional_and_keyword_calls_and_copies_results():
    calls = []

    def build(x, y=1):
        calls.append((x, y))
        return {"sum": x + y}

    memoiser = Memoiser(MemoryCache())
    first = memoiser.call(build, (1,), {"y": 2})
    again = memoiser.call(build, (1, 2))
    assert first == again == {"sum": 3} and calls == [(1, 2)]
    first["sum"] = 99  # a copy: the cached value is untouched
    assert memoiser.call(build, (1, 2)) == {"sum": 3}
    memoised = memoise_decorator(memoiser)(build)
    assert memoised(5) == {"sum": 6} and calls[-1] == (5, 1)


def test_expression_object_model_matches_and_parses():
    tree = Parser().parse("a=b and ((c=d or e!=f) and not g.h > 10)")
    expected = All(
        [
            Condition("a", operator.eq, "b"),
            All(
                [
                    Any([Condition("c", operator.eq, "d"), Condition("e", operator.ne, "f")]),
                    Not(Condition("g.h", operator.gt, 10)),
                ]
            ),
        ]
    )
    assert str(tree) == str(expected)
    candidate = {"a": "b", "c": "d", "g": {"h": 3}}
    assert tree.match(candidate) is True
    assert tree.match(dict(candidate, g={"h": 30})) is False
    assert Condition("name", operator.eq, "val*").match({"name": "value"}) is True
    assert Condition("missing", operator.ne, "x").match({}) is False
    with pytest.raises(ParseError):
        Parser().parse("key=value nor other=value")


def test_mixin_changes_only_the_one_instance():
    class Plain:
        pass

    class Extra:
        def extra(self):
            return "yes"

    a, b = Plain(), Plain()
    mixin(a, Extra)
    mixin(a, Extra)
    assert a.extra() == "yes" and not hasattr(b, "extra")
    assert len(type(a).__mro__) == 4  # Extra, Plain, the new class, object


def test_detached_collection_copy_leaves_the_entity_alone(devserver_session, connect):
    session = connect(devserver_session)
    project = session.query("select children from Project").first()
    children = project["children"]
    detached = copy.copy(children)
    with session.operation_recording(False):
        detached.append(session.query("Shot").first())
    assert len(detached) == len(children) + 1
    assert len(project["children"]) == len(children)
