"""The origin location's structure: data stays where it already is."""

from __future__ import annotations

from typing import Any

from reviewd.api.structure.base import Structure


class OriginStructure(Structure):
    """Identifier = ``context["source_resource_identifier"]`` (the original path)."""

    def get_resource_identifier(self, entity: Any, context: dict[str, Any] | None = None) -> str:
        if not context or "source_resource_identifier" not in context:
            raise ValueError(
                "OriginStructure needs context['source_resource_identifier'] (the data's path)."
            )
        answer: str = context["source_resource_identifier"]
        return answer
