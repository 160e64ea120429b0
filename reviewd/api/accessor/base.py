"""The accessor interface locations use to move component data.

Several accessors may reach the same storage (a disk mount, a web endpoint);
what the server stores is the *resource identifier*, a string every accessor
of that storage understands.
"""

from __future__ import annotations

import abc
from typing import Any

from reviewd.api.exception import AccessorUnsupportedOperationError


class Accessor(abc.ABC):
    """List, test, open, create and remove resources by identifier."""

    @abc.abstractmethod
    def list(self, resource_identifier: str) -> list[str]:
        """Identifiers of the entries in the container *resource_identifier*."""

    @abc.abstractmethod
    def exists(self, resource_identifier: str) -> bool: ...

    @abc.abstractmethod
    def is_file(self, resource_identifier: str) -> bool: ...

    @abc.abstractmethod
    def is_container(self, resource_identifier: str) -> bool: ...

    @abc.abstractmethod
    def is_sequence(self, resource_identifier: str) -> bool: ...

    @abc.abstractmethod
    def open(self, resource_identifier: str, mode: str = "rb") -> Any:
        """A :class:`reviewd.api.data.Data` for the resource."""

    @abc.abstractmethod
    def remove(self, resource_identifier: str) -> None: ...

    @abc.abstractmethod
    def make_container(self, resource_identifier: str, recursive: bool = True) -> None:
        """Create the container (and parents with *recursive*); existing is fine."""

    @abc.abstractmethod
    def get_container(self, resource_identifier: str) -> str | None:
        """The identifier of the container holding *resource_identifier*."""

    def remove_container(self, resource_identifier: str) -> None:
        self.remove(resource_identifier)

    def get_filesystem_path(self, resource_identifier: str) -> str:
        raise AccessorUnsupportedOperationError(
            operation="get_filesystem_path", resource_identifier=resource_identifier
        )

    def get_url(self, resource_identifier: str) -> str:
        raise AccessorUnsupportedOperationError(
            operation="get_url", resource_identifier=resource_identifier
        )
