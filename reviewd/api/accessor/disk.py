"""Accessing a location's data as files under a directory (the *prefix*).

Identifiers are paths relative to the prefix; absolute paths are accepted when
they lie inside it.  Operating-system errors become the accessor errors callers
catch (not found, permission denied, not empty, wrong kind).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

from reviewd.api.accessor.base import Accessor
from reviewd.api.data import File
from reviewd.api.exception import (
    AccessorContainerNotEmptyError,
    AccessorError,
    AccessorFilesystemPathError,
    AccessorOperationFailedError,
    AccessorParentResourceNotFoundError,
    AccessorPermissionDeniedError,
    AccessorResourceInvalidError,
    AccessorResourceNotFoundError,
    AccessorUnsupportedOperationError,
)

_ERRORS_BY_ERRNO: dict[int | None, type[AccessorError]] = {
    errno.ENOENT: AccessorResourceNotFoundError,
    errno.EPERM: AccessorPermissionDeniedError,
    errno.EACCES: AccessorPermissionDeniedError,
    errno.ENOTEMPTY: AccessorContainerNotEmptyError,
    errno.ENOTDIR: AccessorResourceInvalidError,
    errno.EISDIR: AccessorResourceInvalidError,
    errno.EINVAL: AccessorResourceInvalidError,
}


@contextlib.contextmanager
def error_handler(**details: Any) -> Iterator[None]:
    """Re-raise ``OSError`` inside the block as the matching accessor error."""
    try:
        yield
    except OSError as error:
        details.setdefault("error", error)
        raise _ERRORS_BY_ERRNO.get(error.errno, AccessorOperationFailedError)(**details) from error


class DiskAccessor(Accessor):
    """Files under *prefix* on a local or mounted filesystem."""

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        super().__init__()
        self.prefix = os.path.abspath(os.path.expanduser(prefix)) if prefix else prefix

    def get_filesystem_path(self, resource_identifier: str) -> str:
        """The path for *resource_identifier*; outside the prefix is an error."""
        path = os.path.normpath(resource_identifier) if resource_identifier else resource_identifier
        if self.prefix:
            if not os.path.isabs(path):
                path = os.path.normpath(os.path.join(self.prefix, path))
            if not path.startswith(self.prefix):
                raise AccessorFilesystemPathError(
                    resource_identifier=resource_identifier,
                    message=f"{resource_identifier!r} lies outside the accessor's prefix "
                    f"{self.prefix!r}.",
                )
        return path

    def list(self, resource_identifier: str) -> list[str]:
        if not self.is_container(resource_identifier):
            if self.exists(resource_identifier):
                raise AccessorResourceInvalidError(
                    operation="list",
                    resource_identifier=resource_identifier,
                    message=f"{resource_identifier!r} is not a container.",
                )
            raise AccessorResourceNotFoundError(
                operation="list", resource_identifier=resource_identifier
            )
        path = self.get_filesystem_path(resource_identifier)
        with error_handler(operation="list", resource_identifier=resource_identifier):
            names = os.listdir(path)
        return [os.path.join(resource_identifier, name) for name in names]

    def exists(self, resource_identifier: str) -> bool:
        return os.path.exists(self.get_filesystem_path(resource_identifier))

    def is_file(self, resource_identifier: str) -> bool:
        return os.path.isfile(self.get_filesystem_path(resource_identifier))

    def is_container(self, resource_identifier: str) -> bool:
        return os.path.isdir(self.get_filesystem_path(resource_identifier))

    def is_sequence(self, resource_identifier: str) -> bool:
        raise AccessorUnsupportedOperationError(
            operation="is_sequence", resource_identifier=resource_identifier
        )

    def open(self, resource_identifier: str, mode: str = "rb") -> File:
        path = self.get_filesystem_path(resource_identifier)
        with error_handler(operation="open", resource_identifier=resource_identifier):
            return File(path, mode)

    def remove(self, resource_identifier: str) -> None:
        path = self.get_filesystem_path(resource_identifier)
        if self.is_file(resource_identifier):
            with error_handler(operation="remove", resource_identifier=resource_identifier):
                os.remove(path)
        elif self.is_container(resource_identifier):
            with error_handler(operation="remove", resource_identifier=resource_identifier):
                os.rmdir(path)
        else:
            raise AccessorResourceNotFoundError(
                operation="remove", resource_identifier=resource_identifier
            )

    def make_container(self, resource_identifier: str, recursive: bool = True) -> None:
        path = self.get_filesystem_path(resource_identifier)
        with error_handler(operation="makeContainer", resource_identifier=resource_identifier):
            if recursive:
                os.makedirs(path, exist_ok=True)
                return
            try:
                os.mkdir(path)
            except FileExistsError:
                return
            except FileNotFoundError:
                raise AccessorParentResourceNotFoundError(
                    operation="makeContainer", resource_identifier=resource_identifier
                ) from None

    def get_container(self, resource_identifier: str) -> str:
        container = os.path.dirname(self.get_filesystem_path(resource_identifier))
        if self.prefix:
            if not container.startswith(self.prefix):
                raise AccessorParentResourceNotFoundError(
                    resource_identifier=resource_identifier,
                    message=f"The container of {resource_identifier!r} is outside the prefix.",
                )
            container = container[len(self.prefix) :].lstrip("\\/")
        return container
