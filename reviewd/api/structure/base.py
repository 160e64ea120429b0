"""The structure interface: ``get_resource_identifier(entity, context)``."""

from __future__ import annotations

import abc
from typing import Any


class Structure(abc.ABC):
    """Turns a component into a resource identifier (a path-like string)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.path_separator = "/"

    @abc.abstractmethod
    def get_resource_identifier(self, entity: Any, context: dict[str, Any] | None = None) -> str:
        """Where *entity*'s data goes; *context* may carry extra information."""

    def _get_sequence_expression(self, sequence: Any) -> str:
        """The printf-style frame placeholder for a sequence component (``%04d``)."""
        padding = sequence["padding"]
        return f"%0{padding}d" if padding else "%d"
