"""A readable, multi-line text rendering of an entity for terminals and logs.

Iterating an entity's attributes may load them from the server; callers who
want only what is loaded switch auto-population off around the call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from reviewd.api.symbol import NOT_SET

#: Ready-made attribute filters for :func:`format`.
FILTER: dict[str, Callable[[Any, str, Any], bool]] = {
    "ignore_unset": lambda entity, name, value: value is not NOT_SET,
}


def _colours_wanted() -> bool:
    """Colour only a real terminal, honouring NO_COLOR / FORCE_COLOR conventions."""
    environ = os.environ
    if "ANSI_COLORS_DISABLED" in environ or "NO_COLOR" in environ:
        return False
    if "FORCE_COLOR" in environ:
        return True
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) and environ.get("TERM") != "dumb"


def _default_header(text: str) -> str:
    return f"\x1b[1m\x1b[44m\x1b[97m{text}\x1b[0m" if _colours_wanted() else text


def _default_label(text: str) -> str:
    return f"\x1b[1m\x1b[34m{text}\x1b[0m" if _colours_wanted() else text


def format(  # noqa: A001 - ftrack_api's public name
    entity: Any,
    formatters: dict[str, Callable[[str], str]] | None = None,
    attribute_filter: Callable[[Any, str, Any], bool] | None = None,
    recursive: bool = False,
    indent: int = 0,
    indent_first_line: bool = True,
    _seen: set[Any] | None = None,
) -> str:
    """Entity type as a header, then one ``name: value`` line per attribute (sorted).

    *formatters* may give ``header`` and ``label`` functions; *attribute_filter*
    ``(entity, name, value) -> bool`` selects attributes; with *recursive*
    collections are expanded entity by entity.  An entity already being printed
    further up is shown as ``Type{...}`` instead of recursing forever.
    """
    from reviewd.api.collection import Collection
    from reviewd.api.entity.base import Entity
    from reviewd.api.inspection import identity

    formatters = dict(formatters or {})
    formatters.setdefault("header", _default_header)
    formatters.setdefault("label", _default_label)
    spacer = " " * indent
    first_spacer = spacer if indent_first_line else ""
    seen = set() if _seen is None else _seen
    key = str(identity(entity))
    if key in seen:
        return first_spacer + formatters["header"](entity.entity_type) + "{...}"
    seen.add(key)

    lines = [first_spacer + formatters["header"](entity.entity_type)]
    for name, value in sorted(entity.items()):
        if attribute_filter is not None and not attribute_filter(entity, name, value):
            continue
        child_indent = indent + len(name) + 3
        nested: dict[str, Any] = dict(
            formatters=formatters,
            attribute_filter=attribute_filter,
            recursive=recursive,
            indent=child_indent,
        )
        if isinstance(value, Entity):
            value = format(value, indent_first_line=False, _seen=set(seen), **nested)
        elif isinstance(value, Collection) and recursive:
            value = "\n".join(
                format(child, indent_first_line=index != 0, _seen=set(seen), **nested)
                for index, child in enumerate(value)
            )
        lines.append(f"{spacer} {formatters['label'](name)}: {value}")
    return "\n".join(lines)
