"""QueryResult: a lazy, paged result of a query expression.

Nothing is fetched until the result is used.  Iteration fetches one page at a time
(``offset N limit PAGE``) and follows ``metadata.next.offset`` until the server says
there is no more; ``all()`` drains it; ``first()`` and ``one()`` send small dedicated
queries.  An ``offset``/``limit`` written in the expression is honoured for the final
result while pages are fetched underneath.

The session is duck-typed: it must provide ``_fetch_page(expression) -> (entities,
next_offset)`` and ``_result_errors() -> (not found class, multiple found class)``.  That keeps this module free of imports.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only: this module imports nothing of the client
    from reviewd.api.entity import Entity

_OFFSET = re.compile(r"\boffset\s+(\d+)", re.IGNORECASE)
_LIMIT = re.compile(r"\blimit\s+(\d+)", re.IGNORECASE)


def split_offset_limit(expression: str) -> tuple[str, int | None, int | None]:
    """Return (expression without offset/limit, offset, limit)."""
    offset = limit = None
    match = _OFFSET.search(expression)
    if match:
        offset = int(match.group(1))
        expression = expression[: match.start()] + expression[match.end() :]
    match = _LIMIT.search(expression)
    if match:
        limit = int(match.group(1))
        expression = expression[: match.start()] + expression[match.end() :]
    return " ".join(expression.split()), offset, limit


class QueryResult:
    """The lazily fetched result of ``session.query(expression)``."""

    def __init__(self, session: Any, expression: str, page_size: int = 500) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1.")
        self._session = session
        self.expression = expression
        self._base, self._offset, self._limit = split_offset_limit(expression)
        self._page_size = page_size
        if self._limit is not None and self._limit < page_size:
            self._page_size = max(self._limit, 1)
        self._results: list[Entity] = []
        self._next_offset: int | None = self._offset or 0
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = "fetched" if self._next_offset is None else "pending"
        return f"<QueryResult {self.expression!r} {state} {len(self._results)} loaded>"

    # -------------------------------------------------------------- paging
    def _fetch_more(self) -> bool:
        """Fetch the next page; return False when the result is complete."""
        with self._lock:
            if self._next_offset is None:
                return False
            if self._limit is not None and len(self._results) >= self._limit:
                self._next_offset = None
                return False
            size = self._page_size
            if self._limit is not None:
                size = min(size, self._limit - len(self._results))
            expression = f"{self._base} offset {self._next_offset} limit {size}"
            entities, next_offset = self._session._fetch_page(expression)
            self._results.extend(entities)
            if self._limit is not None and len(self._results) >= self._limit:
                del self._results[self._limit :]
                next_offset = None
            self._next_offset = next_offset
            return True

    def all(self) -> list[Entity]:
        """Every result, fetching the remaining pages."""
        while self._fetch_more():
            pass
        return list(self._results)

    def __iter__(self) -> Iterator[Entity]:
        index = 0
        while True:
            while index < len(self._results):
                yield self._results[index]
                index += 1
            if not self._fetch_more():
                if index >= len(self._results):
                    return

    def __len__(self) -> int:
        return len(self.all())

    def __getitem__(self, index: Any) -> Any:
        return self.all()[index]

    def __bool__(self) -> bool:
        for _ in self:
            return True
        return False

    def first(self) -> Entity | None:
        """The first result or None, with a query of ``limit 1``.

        An expression with its own ``limit`` is refused (``ValueError``), as in
        ftrack_api: the two limits would contradict each other.
        """
        if self._limit is not None:
            raise ValueError(
                "first() cannot be used with an expression that has a limit; use all()[0]."
            )
        if self._results:
            return self._results[0]
        expression = f"{self._base} offset {self._offset or 0} limit 1"
        entities: list[Entity]
        entities, _ = self._session._fetch_page(expression)
        return entities[0] if entities else None

    def one(self) -> Entity:
        """The only result; ``NotFoundError`` if none, ``MultipleResultsFoundError`` if more."""
        not_found, multiple = self._session._result_errors()
        if self._offset is not None or self._limit is not None:
            raise ValueError("one() cannot be used with an expression that has an offset or limit.")
        entities: list[Entity]
        entities, _ = self._session._fetch_page(f"{self._base} offset 0 limit 2")
        if not entities:
            raise not_found(f"No result found for query {self._base!r}.")
        if len(entities) > 1:
            raise multiple(f"More than one result for query {self._base!r}.")
        return entities[0]
