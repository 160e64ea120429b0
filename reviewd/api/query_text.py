"""The query-language text the client writes itself: literals, key conditions, projections.

``session.get``, ``populate``, ``ensure`` and a ``query`` without ``select`` all build
expressions from Python values; quoting is done here, in one place, so that a name with a
quote or a backslash can never break (or change) a query.  Pure functions.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from reviewd.api.entity import Entity

_SELECT = re.compile(r"^\s*select\s", re.IGNORECASE)


def has_select(expression: str) -> bool:
    """Whether *expression* names its projections (``select ... from``)."""
    return _SELECT.match(expression) is not None


def type_name_of(expression: str) -> str:
    """The entity type an expression without ``select`` starts with (``""`` if empty)."""
    return expression.split(None, 1)[0] if expression.strip() else ""


def with_projections(expression: str, projections: Iterable[str]) -> str:
    """``select <projections> from <expression>``."""
    return f"select {', '.join(projections)} from {expression.strip()}"


def literal(value: Any) -> str:
    """A query-language literal for *value*."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, (int, float)):
        return repr(value)
    if value.__class__.__module__ == "arrow.arrow":  # arrow.Arrow, without importing arrow
        value = value.datetime
    if isinstance(value, _dt.datetime):
        value = value.replace(microsecond=0).isoformat()
    elif isinstance(value, _dt.date):
        value = value.isoformat()
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def key_condition(names: Sequence[str], values: Sequence[Any]) -> str:
    """``a is "1" and b is "2"``: one entity named by its primary key values."""
    return " and ".join(
        f"{name} is {literal(value)}" for name, value in zip(names, values, strict=False)
    )


def keys_condition(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A condition matching any of several entities named by their primary key values.

    A single-attribute key is one ``in (...)`` list; a compound key is ``or``-ed groups.
    """
    if len(names) == 1:
        return f"{names[0]} in ({', '.join(literal(row[0]) for row in rows)})"
    return " or ".join(f"({key_condition(names, row)})" for row in rows)


def criterion(key: str, value: Any) -> str:
    """``key is value``; an entity value matches on its primary key (``key.id is ...``)."""
    if isinstance(value, Entity):
        return " and ".join(
            f"{key}.{name} is {literal(v)}"
            for name, v in zip(
                value.primary_key_attributes, value.primary_key_values(), strict=False
            )
        )
    return f"{key} is {literal(value)}"
