"""Conversion of attribute values between the wire, SQLite and query literals.

Stored values are chosen so that SQLite can compare and sort them directly: datetimes
as naive UTC ISO text (lexical order is time order), booleans as 0/1, free-form
``object``/``variable`` values as JSON text.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from typing import Any

from reviewd.devserver.errors import validation

UTC = _dt.timezone.utc


def now_text() -> str:
    """The current time as a stored datetime."""
    return _dt.datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def parse_datetime(value: Any, where: str) -> str:
    """A wire or literal datetime as stored text (naive UTC, ISO 8601)."""
    if isinstance(value, dict) and value.get("__type__") in ("datetime", "date"):
        value = value.get("value")
    if not isinstance(value, str):
        raise validation(f"{where}: expected a datetime, got {type(value).__name__}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise validation(f"{where}: {value!r} is not an ISO 8601 datetime") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def to_storage(data_type: str | None, value: Any, where: str) -> Any:
    """Validate a wire value for an attribute of *data_type* and return its stored form."""
    if value is None:
        return None
    if data_type == "datetime":
        return parse_datetime(value, where)
    if data_type == "boolean":
        if isinstance(value, bool) or value in (0, 1):
            return int(bool(value))
        raise validation(f"{where}: expected true or false, got {value!r}")
    if data_type == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise validation(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if data_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise validation(f"{where}: expected a number, got {value!r}")
        return value
    if data_type == "string":
        if isinstance(value, (dict, list)):
            raise validation(f"{where}: expected a string, got {type(value).__name__}")
        return value if isinstance(value, str) else str(value)
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        raise validation(f"{where}: value is not JSON-serialisable") from None


def _datetime_out(stored: Any) -> Any:
    if stored is None:
        return None
    return {"__type__": "datetime", "value": f"{stored}+00:00"}


def _boolean_out(stored: Any) -> Any:
    return None if stored is None else bool(stored)


def _json_out(stored: Any) -> Any:
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except (TypeError, ValueError):
        return stored


def _identity(stored: Any) -> Any:
    return stored


def wire_converter(data_type: str | None) -> Callable[[Any], Any]:
    """A fast function turning a stored value of *data_type* into its wire form."""
    if data_type == "datetime":
        return _datetime_out
    if data_type == "boolean":
        return _boolean_out
    if data_type in ("object", "variable"):
        return _json_out
    return _identity


def event_text(data_type: str | None, stored: Any) -> str | None:
    """A stored value as the string an ftrack.update event carries (or None)."""
    if stored is None:
        return None
    if data_type == "boolean":
        return "True" if stored else "False"
    if isinstance(stored, float) and stored.is_integer():
        return str(int(stored))
    return str(stored)
