"""Sentinel values shared by the client (ftrack-familiar names)."""

from __future__ import annotations

from typing import Any


class Symbol:
    """A named sentinel that is falsy, copy-stable and readable in reprs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __reduce__(self) -> Any:
        return self.name


#: An attribute value that has not been loaded from the server.
NOT_SET = Symbol("NOT_SET")
#: Entity states.
CREATED = Symbol("CREATED")
MODIFIED = Symbol("MODIFIED")
DELETED = Symbol("DELETED")
#: Marker for "nothing" where None is a legal value.
NOTHING = Symbol("NOTHING")
