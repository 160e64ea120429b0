"""A structure that spreads components over directories named from their id.

The first four characters of the id become four nested directories and the
rest the file name, so no directory grows to millions of entries.  Members of
a container go inside the container's directory; members of a sequence are
named ``file.<index><ext>`` beside the sequence expression.
"""

from __future__ import annotations

import os
from typing import Any

from reviewd.api.structure.base import Structure
from reviewd.api.symbol import NOT_SET


def _spread(identifier: str) -> list[str]:
    return list(identifier[:4])


class IdStructure(Structure):
    """``prefix/a/b/c/d/<rest of id><ext>`` for files; see the module docstring."""

    def get_resource_identifier(self, entity: Any, context: dict[str, Any] | None = None) -> str:
        kind = entity.entity_type
        if kind == "FileComponent":
            container = entity["container"]
            if container and container is not NOT_SET:
                container_path = self.get_resource_identifier(container)
                if container.entity_type == "SequenceComponent":
                    parts = [
                        os.path.dirname(container_path),
                        f"file.{entity['name']}{entity['file_type']}",
                    ]
                else:
                    parts = [container_path, entity["id"] + entity["file_type"]]
            else:
                parts = [
                    self.prefix,
                    *_spread(entity["id"]),
                    entity["id"][4:] + entity["file_type"],
                ]
        elif kind == "SequenceComponent":
            name = f"file.{self._get_sequence_expression(entity)}"
            file_type = entity["file_type"]
            if file_type and file_type is not NOT_SET:
                name += file_type
            parts = [self.prefix, *_spread(entity["id"]), entity["id"][4:], name]
        elif kind == "ContainerComponent":
            parts = [self.prefix, *_spread(entity["id"]), entity["id"][4:]]
        else:
            raise NotImplementedError(f"IdStructure cannot place {entity!r}.")
        return self.path_separator.join(parts).strip("/")
