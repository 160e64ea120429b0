"""The transformer interface; the base class leaves identifiers unchanged."""

from __future__ import annotations

from typing import Any


class ResourceIdentifierTransformer:
    """Encodes identifiers before they are stored and decodes them when read back.

    A studio uses one to keep, say, a platform-neutral form on the server and a
    local path in memory.
    """

    def __init__(self, session: Any) -> None:
        self.session = session

    def encode(self, resource_identifier: str, context: dict[str, Any] | None = None) -> str:
        return resource_identifier

    def decode(self, resource_identifier: str, context: dict[str, Any] | None = None) -> str:
        return resource_identifier
