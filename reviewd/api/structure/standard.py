"""A human-readable structure: ``project/sequence/shot/asset/v001/name.ext``.

Names are made filesystem-safe (ASCII, no spaces or punctuation, lower case)
unless the substitute character is None.  Components must belong to a
committed version under a project; otherwise :class:`StructureError`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any

from reviewd.api.exception import StructureError
from reviewd.api.structure.base import Structure
from reviewd.api.symbol import NOT_SET

_UNSAFE = re.compile(r"[^\w.-]")


class StandardStructure(Structure):
    """Paths from the version's context; see the module docstring."""

    def __init__(
        self,
        project_versions_prefix: str | None = None,
        illegal_character_substitute: str | None = "_",
    ) -> None:
        super().__init__()
        self.project_versions_prefix = project_versions_prefix
        self.illegal_character_substitute = illegal_character_substitute

    def sanitise_for_filesystem(self, value: Any) -> str:
        """*value* as a safe, lower-case path part (unchanged without a substitute)."""
        if self.illegal_character_substitute is None:
            answer: str = value
            return answer
        ascii_text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore")
        text = _UNSAFE.sub(self.illegal_character_substitute, ascii_text.decode("utf-8"))
        return text.strip().lower()

    def _format_version(self, number: int) -> str:
        return f"v{number:03d}"

    def _get_parts(self, entity: Any) -> list[str]:
        session = entity.session
        version = entity["version"]
        if version is NOT_SET and entity["version_id"]:
            version = session.get("AssetVersion", entity["version_id"])
        problem = (
            f"Component {entity!r} must belong to a committed version of a committed "
            "asset under a context."
        )
        if version is NOT_SET or version is None or version in session.created:
            raise StructureError(problem)
        link = version["link"]
        if not link:
            raise StructureError(problem)
        project = session.get("Project", link[0]["id"])
        parts = [project["name"]]
        context_names = [item["name"] for item in link[1:-1]]
        if context_names:
            parts.extend(context_names)
        elif self.project_versions_prefix:
            parts.append(self.project_versions_prefix)
        parts.append(version["asset"]["name"])
        parts.append(self._format_version(version["version"]))
        return [self.sanitise_for_filesystem(part) for part in parts]

    def get_resource_identifier(self, entity: Any, context: dict[str, Any] | None = None) -> str:
        kind = entity.entity_type
        safe = self.sanitise_for_filesystem
        if kind == "FileComponent":
            container = entity["container"]
            if container:
                container_path = self.get_resource_identifier(container)
                if container.entity_type == "SequenceComponent":
                    name = f"{container['name']}.{entity['name']}{entity['file_type']}"
                    parts = [os.path.dirname(container_path), safe(name)]
                else:
                    parts = [container_path, safe(entity["name"] + entity["file_type"])]
            else:
                parts = self._get_parts(entity)
                parts.append(safe(entity["name"] + entity["file_type"]))
        elif kind == "SequenceComponent":
            parts = self._get_parts(entity)
            parts.append(
                f"{safe(entity['name'])}.{self._get_sequence_expression(entity)}"
                f"{safe(entity['file_type'])}"
            )
        elif kind == "ContainerComponent":
            parts = self._get_parts(entity)
            parts.append(safe(entity["name"]))
        else:
            raise NotImplementedError(f"StandardStructure cannot place {entity!r}.")
        return self.path_separator.join(parts)
