"""Reading file-sequence notation: ``/renders/shot.%04d.exr [1-3, 7]``.

``Session.create_component`` accepts such a string for a sequence (it is the
notation ftrack's documentation and the ``clique`` library use); anything else
is a single file.  Pure string handling, no filesystem access.
"""

from __future__ import annotations

import re

_NOTATION = re.compile(
    r"^(?P<head>.*?)%(?P<zero>0?)(?P<width>\d*)d(?P<tail>[^\s]*)\s+\[(?P<ranges>[\d\s,\-]*)\]$"
)


class Sequence:
    """A parsed sequence: ``head``, ``padding`` (0: unpadded), ``tail`` and its indexes."""

    __slots__ = ("head", "padding", "tail", "indexes")

    def __init__(self, head: str, padding: int, tail: str, indexes: tuple[int, ...]) -> None:
        self.head, self.padding, self.tail, self.indexes = head, padding, tail, indexes

    def __repr__(self) -> str:
        return f"<Sequence {self.pattern} {list(self.indexes)}>"

    def index_text(self, index: int) -> str:
        return f"{index:0{self.padding}d}" if self.padding else str(index)

    def member(self, index: int) -> str:
        return f"{self.head}{self.index_text(index)}{self.tail}"

    @property
    def members(self) -> list[str]:
        return [self.member(index) for index in self.indexes]

    @property
    def pattern(self) -> str:
        """``head%04dtail``: the container's path."""
        padding = f"%0{self.padding}d" if self.padding else "%d"
        return f"{self.head}{padding}{self.tail}"


def parse(text: str) -> Sequence | None:
    """The sequence *text* describes, or None when it is not sequence notation."""
    match = _NOTATION.match(text.strip())
    if match is None:
        return None
    indexes: list[int] = []
    for part in match["ranges"].split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        start = int(first)
        end = int(last) if last else start
        if end < start:
            raise ValueError(f"Sequence range {part!r} runs backwards in {text!r}.")
        indexes.extend(range(start, end + 1))
    width = int(match["width"]) if match["width"] else 0
    return Sequence(match["head"], width, match["tail"], tuple(sorted(set(indexes))))
