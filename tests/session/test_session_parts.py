"""Unit tests of the modules the Session delegates to: settings, query text, result checks."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from reviewd.api.exception import ServerCompatibilityError, ServerError
from reviewd.api.query_text import (
    has_select,
    key_condition,
    keys_condition,
    literal,
    type_name_of,
    with_projections,
)
from reviewd.api.result_checks import query_page, server_information
from reviewd.api.session_settings import (
    resolve_credentials,
    resolve_plugin_paths,
    resolve_schema_cache_path,
)

KEY = "parts-test-secret-key-77"


# ------------------------------------------------------------------ settings
def test_credentials_from_arguments_strip_the_slash_and_hide_the_key(monkeypatch):
    monkeypatch.delenv("FTRACK_SERVER", raising=False)
    credentials = resolve_credentials("http://ftrack.example/", KEY, "jane")
    assert credentials.server_url == "http://ftrack.example"
    assert credentials.api_key == KEY and credentials.api_user == "jane"
    assert KEY not in repr(credentials) and "jane" in repr(credentials)


def test_credentials_from_the_legacy_key_variable(monkeypatch):
    monkeypatch.setenv("FTRACK_SERVER", "http://env.example")
    monkeypatch.delenv("FTRACK_API_KEY", raising=False)
    monkeypatch.setenv("FTRACK_APIKEY", KEY)
    monkeypatch.setenv("FTRACK_API_USER", "env-user")
    credentials = resolve_credentials(None, None, None)
    assert (credentials.server_url, credentials.api_key, credentials.api_user) == (
        "http://env.example",
        KEY,
        "env-user",
    )


def test_missing_server_names_argument_and_variable(monkeypatch):
    monkeypatch.delenv("FTRACK_SERVER", raising=False)
    with pytest.raises(TypeError, match=r'"server_url".*FTRACK_SERVER'):
        resolve_credentials(None, KEY, "jane")


def test_plugin_paths_and_schema_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv("FTRACK_EVENT_PLUGIN_PATH", f"/a{os.pathsep}/b")
    assert resolve_plugin_paths(None) == ["/a", "/b"]
    assert resolve_plugin_paths(["", "/c"]) == ["/c"]
    monkeypatch.setenv("FTRACK_API_SCHEMA_CACHE_PATH", str(tmp_path))
    assert resolve_schema_cache_path(None) == str(tmp_path)
    assert resolve_schema_cache_path(False) is None
    assert resolve_schema_cache_path("/x") == "/x"


# ------------------------------------------------------------------ query text
def test_literals_quote_and_escape():
    assert literal('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert literal(True) == "True" and literal(None) == "None" and literal(2.5) == "2.5"
    assert literal(dt.datetime(2024, 5, 6, 7, 8, 9, 123)) == '"2024-05-06T07:08:09"'
    assert literal(dt.date(2024, 5, 6)) == '"2024-05-06"'


def test_key_conditions_single_and_compound():
    assert key_condition(["id"], ["1"]) == 'id is "1"'
    assert keys_condition(["id"], [["1"], ["2"]]) == 'id in ("1", "2")'
    assert keys_condition(["a", "b"], [[1, "x"], [2, "y"]]) == (
        '(a is 1 and b is "x") or (a is 2 and b is "y")'
    )


def test_default_projections_text():
    assert has_select("  SELECT name from Task") and not has_select("Task where x is 1")
    assert type_name_of("Task where name is 'a'") == "Task" and type_name_of("  ") == ""
    assert with_projections(" Task ", ["id", "name"]) == "select id, name from Task"


# ------------------------------------------------------------------ result checks
def test_server_information_must_be_an_object():
    assert server_information({"version": "dev"}) == {"version": "dev"}
    with pytest.raises(ServerCompatibilityError, match="query_server_information"):
        server_information(["dev"], "http://s")


@pytest.mark.parametrize(
    "metadata, expected",
    [
        (None, None),
        ({}, None),
        ({"next": None}, None),
        ({"next": {"offset": None}}, None),
        ({"next": {"offset": 500}}, 500),
    ],
)
def test_query_page_next_offset(metadata, expected):
    assert query_page({"data": [], "metadata": metadata}) == ([], expected)


@pytest.mark.parametrize(
    "metadata", [{"next": {"offset": "500"}}, {"next": {"offset": -1}}, {"next": {"offset": True}}]
)
def test_query_page_refuses_a_bad_offset(metadata):
    with pytest.raises(ServerError, match="offset"):
        query_page({"data": [], "metadata": metadata})
