"""The query language end to end over HTTP, against the demo production."""

from __future__ import annotations

import pytest

from reviewd.devserver.query import BoolOp, Condition, Not, Query, QueryParseError, parse

# ---------------------------------------------------------------- parser (pure)


def test_parser_builds_the_whole_grammar():
    query = parse(
        'select name, status.name from Task where status.name is "In Progress" and '
        "(parent.name like 'sh0%' or priority.sort > 2) and not bid <= 1.5 "
        "order by name descending, id offset 10 limit 500"
    )
    assert query.entity_type == "Task"
    assert query.projections == [["name"], ["status", "name"]]
    assert isinstance(query.where, BoolOp) and query.where.operator == "and"
    first, second, third = query.where.items
    assert first == Condition(["status", "name"], "is", "In Progress", first.position)
    assert isinstance(second, BoolOp) and second.operator == "or"
    assert isinstance(third, Not) and third.item.value == 1.5
    assert query.order == [(["name"], True), (["id"], False)]
    assert (query.offset, query.limit) == (10, 500)


def test_parser_literals_lists_and_subqueries():
    query = parse(
        "select id from Task where a in ('x', \"y\", 3) and b not_in (select id from Shot where "
        "name is_not None) and c is True and d is False and e has (name is x) and f any (g < 1)"
    )
    a, b, c, d, e, f = query.where.items
    assert a.value == ["x", "y", 3]
    assert isinstance(b.value, Query) and b.value.entity_type == "Shot"
    assert b.value.where.operator == "is_not" and b.value.where.value is None
    assert (c.value, d.value) == (True, False)
    assert isinstance(e.value, Condition) and e.operator == "has"
    assert f.operator == "any"


def test_expression_without_select_uses_default_projections():
    query = parse("Task where name is x")
    assert query.projections is None and query.entity_type == "Task"


@pytest.mark.parametrize(
    "text, token, position",
    [
        ("select name from Task where", "end of query", 27),
        ("select name form Task", "'form'", 12),
        ("select name from Task where name is 'x' and", "end of query", 43),
        ("select name from Task where (name is 'x'", "end of query", 40),
        ("select name from Task where name in ('a' 'b')", "'b'", 41),
        ("select name from Task limit ten", "'ten'", 28),
        ("select name from Task where name ~ 'x'", "'~'", 33),
    ],
)
def test_parse_errors_name_token_and_position(text, token, position):
    with pytest.raises(QueryParseError) as caught:
        parse(text)
    assert caught.value.position == position
    assert token in caught.value.content and f"position {position}" in caught.value.content


# ---------------------------------------------------------------- against the demo data


def names(rows):
    return sorted(row["name"] for row in rows)


def test_projections_nest_references_and_collections(shared_api):
    (shot,) = shared_api.query(
        "select name, parent.name, parent.parent.full_name, assets.versions.version, "
        "assets.versions.status.name from Shot where name is SH020 and parent.name is SQ010"
    )
    assert shot["parent"]["name"] == "SQ010"
    assert shot["parent"]["parent"]["full_name"] == "Demo Production"
    assert shot["parent"]["parent"]["__entity_type__"] == "Project"
    (asset,) = shot["assets"]
    assert [v["version"] for v in asset["versions"]] == [1, 2]
    assert all(v["status"]["__entity_type__"] == "Status" for v in asset["versions"])


def test_is_is_not_and_comparisons(shared_api):
    assert len(shared_api.query("select id from Shot")) == 6
    assert names(shared_api.query("select name from Sequence where name is_not SQ010")) == ["SQ020"]
    assert len(shared_api.query("select id from AssetVersion where version > 2")) == 3
    assert len(shared_api.query("select id from AssetVersion where version >= 2")) == 9
    assert len(shared_api.query("select id from AssetVersion where version <= 1")) == 6
    assert len(shared_api.query("select id from AssetVersion where version < 1")) == 0
    assert shared_api.query("select id from Project where is_global is False")
    assert not shared_api.query("select id from Project where is_global is True")
    assert len(shared_api.query("select id from Task where description is None")) == 0


def test_in_and_not_in_with_lists_and_subqueries(shared_api):
    pair = shared_api.query("select name from Status where name in ('Approved', 'Ready')")
    assert names(pair) == ["Approved", "Ready"]
    others = shared_api.query("select name from Status where name not_in ('Approved', 'Ready')")
    assert "Approved" not in names(others) and len(others) == 6
    tasks = shared_api.query(
        "select id from Task where parent_id in (select id from Shot where parent.name is SQ020)"
    )
    assert len(tasks) == 9
    rest = shared_api.query(
        "select id from Task where parent_id not_in (select id from Shot where parent.name is SQ020)"
    )
    assert len(rest) == 9


def test_like_and_not_like(shared_api):
    assert len(shared_api.query("select id from Shot where name like 'SH0%'")) == 6
    assert len(shared_api.query("select id from Shot where name like '%30'")) == 2
    assert len(shared_api.query("select id from Shot where name not_like '%30'")) == 4


def test_after_and_before(shared_api):
    later = shared_api.query("select date from AssetVersion where date after '2026-11-04T00:00:00'")
    assert later and all(v["date"]["value"] >= "2026-11-04" for v in later)
    earlier = shared_api.query('select id from AssetVersion where date before "2026-11-04"')
    assert len(later) + len(earlier) == 15


def test_has_and_any(shared_api):
    approved_parent = shared_api.query(
        "select id from Task where parent has (name is SH010 and parent.name is SQ020)"
    )
    assert len(approved_parent) == 3
    shots = shared_api.query("select name from Shot where assets any (versions any (version is 3))")
    assert len(shots) == 3
    via_path = shared_api.query("select name from Shot where assets.versions.version is 3")
    assert names(via_path) == names(shots)


def test_and_or_not_and_parentheses(shared_api):
    rows = shared_api.query(
        "select name from Shot where (name is SH010 or name is SH020) and not parent.name is SQ010"
    )
    assert names(rows) == ["SH010", "SH020"]
    rows = shared_api.query(
        "select name from Shot where name is SH010 or name is SH020 and parent.name is SQ010"
    )
    assert len(rows) == 3  # "and" binds tighter than "or"


def test_order_by_several_keys(shared_api):
    rows = shared_api.query(
        "select name, parent.name from Shot order by parent.name descending, name"
    )
    assert [(r["parent"]["name"], r["name"]) for r in rows] == [
        ("SQ020", "SH010"),
        ("SQ020", "SH020"),
        ("SQ020", "SH030"),
        ("SQ010", "SH010"),
        ("SQ010", "SH020"),
        ("SQ010", "SH030"),
    ]


def test_polymorphic_queries_return_concrete_types(shared_api):
    rows = shared_api.query("select name from TypedContext where parent.name is SQ010")
    assert {r["__entity_type__"] for r in rows} == {"Shot"}
    rows = shared_api.query("select name from Context where name is demo_production")
    assert rows[0]["__entity_type__"] == "Project"


def test_metadata_and_link(shared_api):
    (shot,) = shared_api.query(
        "select metadata, link from Shot where name is SH010 and parent.name is SQ010"
    )
    assert [(m["key"], m["__entity_type__"]) for m in shot["metadata"]] == [
        ("frame_range", "Metadata")
    ]
    assert [item["name"] for item in shot["link"]] == ["demo_production", "SQ010", "SH010"]


def test_paging_returns_every_row_once_in_order(api):
    server = api.server
    (project,) = api.query("select id from Project")
    (user,) = api.query(f"select id from User where username is {server.api_user}")
    operations = [
        {
            "action": "create",
            "entity_type": "Note",
            "entity_key": [f"page-{number:04d}"],
            "entity_data": {
                "__entity_type__": "Note",
                "id": f"page-{number:04d}",
                "content": f"note {number:04d}",
                "parent_id": project["id"],
                "parent_type": "Project",
                "user_id": user["id"],
            },
        }
        for number in range(1234)
    ]
    server.execute_batch(operations, server.api_user)
    seen, offset, pages = [], 0, 0
    while offset is not None:
        reply = api.query_reply(
            f"select content from Note where content like 'note %' order by content "
            f"offset {offset} limit 500"
        )
        seen.extend(row["content"] for row in reply["data"])
        offset = reply["metadata"]["next"]["offset"]
        pages += 1
    assert pages == 3
    assert seen == [f"note {number:04d}" for number in range(1234)]
    # Without an order the server still pages in a stable order.
    ids, offset = [], 0
    while offset is not None:
        reply = api.query_reply(
            f"select id from Note where content like 'note %' offset {offset} limit 400"
        )
        ids.extend(row["id"] for row in reply["data"])
        offset = reply["metadata"]["next"]["offset"]
    assert len(ids) == len(set(ids)) == 1234


def test_review_data_through_collections(shared_api):
    (session,) = shared_api.query(
        "select name, review_session_objects.asset_version.version, "
        "review_session_objects.statuses.status, review_session_invitees.email "
        "from ReviewSession where is_open is True"
    )
    objects = session["review_session_objects"]
    assert len(objects) == 4 and all(o["asset_version"]["version"] >= 2 for o in objects)
    verdicts = sorted(s["status"] for o in objects for s in o["statuses"])
    assert verdicts == ["approved", "require_changes"]
    assert {i["email"] for i in session["review_session_invitees"]} == {
        "jane.doe@studio.example",
        "client@agency.example",
    }
    assigned = shared_api.query(
        "select name from Task where assignments any (resource.username is 'tom.lee')"
    )
    assert {t["name"] for t in assigned} == {"compositing"} and len(assigned) == 6


def test_many_to_many_workflow_statuses(shared_api):
    (schema,) = shared_api.query("select _task_workflow.statuses.name from ProjectSchema")
    assert "Pending Review" in [s["name"] for s in schema["_task_workflow"]["statuses"]]
    flows = shared_api.query(
        "select name from WorkflowSchema where statuses any (name is Approved)"
    )
    assert len(flows) == 2


def test_limit_zero_returns_nothing_and_ends_paging(shared_api):
    reply = shared_api.query_reply("select id from Shot limit 0")
    assert reply["data"] == [] and reply["metadata"]["next"]["offset"] is None


def test_unknown_attribute_in_criteria_names_its_position(shared_api):
    reply = shared_api.call(
        [{"action": "query", "expression": "select id from Task where parent.warp is 1"}]
    )
    assert reply["exception"] == "UnknownAttributeError"
    assert "'warp'" in reply["content"] and "position 26" in reply["content"]
