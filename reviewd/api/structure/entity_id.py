"""A structure whose identifier is simply the entity's id."""

from __future__ import annotations

from typing import Any

from reviewd.api.structure.base import Structure


class EntityIdStructure(Structure):
    """Identifier = ``entity["id"]``: for stores keyed by id (the server location)."""

    def get_resource_identifier(self, entity: Any, context: dict[str, Any] | None = None) -> str:
        answer: str = entity["id"]
        return answer
