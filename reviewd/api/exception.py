"""Exceptions raised by reviewd.

One hierarchy for the whole client so that callers can catch ``reviewd.api.exception.Error``
(or the ftrack-familiar names below) without knowing which layer failed.  Messages are
written for the person who must fix the problem and never contain the API key: code
that formats a message from request data must pass it through :func:`redact` first.
"""

from __future__ import annotations

import builtins
import re
from typing import Any


class Error(Exception):
    """Base class of every error reviewd raises on purpose."""

    default_message = "An unspecified error occurred."

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- transport/server
class ServerError(Error):
    """The server answered with an error object (``{"exception": ..., "content": ...}``)."""

    default_message = "The server reported an error."

    def __init__(
        self,
        message: Any = None,
        details: Any = None,
        exception_name: Any = None,
        error_code: Any = None,
    ) -> None:
        super().__init__(message, details)
        self.exception_name = exception_name
        self.error_code = error_code


class AuthenticationError(ServerError):
    """Credentials were refused (``InvalidCredentialsError`` from the server)."""

    default_message = "The server refused the API user or API key."


class ServerCompatibilityError(ServerError):
    """The server is too old or answered in a form this client does not understand."""


class ConnectionFailedError(Error):
    """The server could not be reached at all (DNS, refused, TLS, timeout)."""

    default_message = "Could not connect to the server."


# ---------------------------------------------------------------- session/entities
class ConnectionClosedError(Error):
    default_message = "The connection is closed."


class SessionClosedError(ConnectionClosedError):
    """ftrack_api raises ConnectionClosedError for calls on a closed session."""

    default_message = "The session is closed; create a new Session to continue."


class EntityTypeError(Error):
    default_message = "Unknown or invalid entity type."


class UnrecognisedEntityTypeError(EntityTypeError, KeyError):
    """Also a ``KeyError``: ftrack_api's ``session.get("NoSuchType", ...)`` raises one."""


class AttributeError_(Error):  # noqa: N801 - avoid shadowing the builtin
    default_message = "Unknown or invalid attribute."


class ImmutableAttributeError(AttributeError_):
    default_message = "Cannot set an immutable attribute."


class NotFoundError(Error):
    default_message = "No matching entity was found."


class IncorrectResultError(Error):
    default_message = "The query returned an unexpected number of results."


class NoResultFoundError(NotFoundError, IncorrectResultError):
    """``query(...).one()`` found nothing (ftrack_api's name for it)."""

    default_message = "The query returned no result where exactly one was expected."


class MultipleResultsFoundError(IncorrectResultError):
    default_message = "More than one entity matched where exactly one was expected."


class OperationError(Error):
    default_message = "An operation could not be recorded or committed."


class InvalidStateError(Error):
    default_message = "The entity is in a state that does not allow this."


class InvalidStateTransitionError(InvalidStateError):
    default_message = "The entity cannot move between these states."


class PermissionDeniedError(Error):
    default_message = "Permission denied."


# ---------------------------------------------------------------- collections
class CollectionError(Error):
    default_message = "Collection error."


class ImmutableCollectionError(CollectionError):
    default_message = "Cannot modify an immutable collection."


class DuplicateItemInCollectionError(CollectionError, ValueError):
    default_message = "The item is already in the collection."


# ---------------------------------------------------------------- locations and storage
class LocationError(Error):
    default_message = "Location error."


class ComponentNotInAnyLocationError(LocationError):
    default_message = "The component is not available in any location."


class ComponentNotInLocationError(LocationError):
    default_message = "Components are not in the location."

    def __init__(
        self, components: Any = None, location: Any = None, message: Any = None, details: Any = None
    ) -> None:
        self.components = list(components or [])
        self.location = location
        super().__init__(
            message or f"{len(self.components)} component(s) not in location {location!r}.",
            details,
        )


class ComponentInLocationError(LocationError):
    default_message = "Components are already in the location."

    def __init__(
        self, components: Any = None, location: Any = None, message: Any = None, details: Any = None
    ) -> None:
        self.components = list(components or [])
        self.location = location
        super().__init__(
            message or f"{len(self.components)} component(s) already in location {location!r}.",
            details,
        )


class AccessorError(Error):
    default_message = "Storage accessor error."


class AccessorOperationFailedError(AccessorError):
    default_message = "The storage operation failed."

    def __init__(
        self,
        operation: Any = "",
        resource_identifier: Any = None,
        error: Any = None,
        message: Any = None,
        details: Any = None,
    ) -> None:
        self.operation = operation
        self.resource_identifier = resource_identifier
        self.error = error
        super().__init__(
            message or f"{operation or 'Operation'} failed for {resource_identifier!r}: {error}",
            details,
        )


class AccessorUnsupportedOperationError(AccessorOperationFailedError):
    default_message = "The accessor does not support this operation."


class AccessorPermissionDeniedError(AccessorOperationFailedError):
    default_message = "Permission denied by the storage."


class AccessorResourceIdentifierError(AccessorError):
    default_message = "Invalid resource identifier."

    def __init__(
        self, resource_identifier: Any = None, message: Any = None, details: Any = None
    ) -> None:
        self.resource_identifier = resource_identifier
        super().__init__(
            message or f"Invalid resource identifier {resource_identifier!r}.", details
        )


class AccessorFilesystemPathError(AccessorResourceIdentifierError):
    default_message = "No filesystem path for the resource."


class AccessorResourceError(AccessorError):
    default_message = "Storage resource error."

    def __init__(
        self,
        operation: Any = "",
        resource_identifier: Any = None,
        error: Any = None,
        message: Any = None,
        details: Any = None,
    ) -> None:
        self.operation = operation
        self.resource_identifier = resource_identifier
        self.error = error
        super().__init__(message or f"{self.default_message} ({resource_identifier!r})", details)


class AccessorResourceNotFoundError(AccessorResourceError):
    default_message = "Resource not found."


class AccessorParentResourceNotFoundError(AccessorResourceError):
    default_message = "The parent resource was not found."


class AccessorResourceInvalidError(AccessorResourceError):
    default_message = "The resource is not valid for this operation."


class AccessorContainerNotEmptyError(AccessorResourceError):
    default_message = "The container is not empty."


class StructureError(Error):
    default_message = "Cannot compute a resource identifier."


# ---------------------------------------------------------------- events
class EventHubError(Error):
    default_message = "Event hub error."


class EventHubConnectionError(EventHubError):
    default_message = "The event hub is not connected."


class EventHubPacketError(EventHubError):
    default_message = "Received a malformed event hub packet."


class ReplyTimeoutError(EventHubError):
    default_message = "No reply arrived before the timeout."


class NotUniqueError(EventHubError):
    """A value that must be unique is already in use (a subscriber id on the hub).

    A subclass of :class:`EventHubError` so that code catching the hub's generic error
    keeps working; ftrack_api has an error of the same name for the same refusal.
    """

    default_message = "The value is already in use."


# ParseError lives in reviewd.api.event.expression (a pure module the devserver shares) and
# is re-exported here lazily to keep that module free of imports from this package.


# ---------------------------------------------------------------- plugins / config
class PluginError(Error):
    default_message = "A plugin failed to load."


class ConfigurationError(Error):
    """Invalid configuration; the daemon exits with code 78 (EX_CONFIG)."""

    default_message = "Invalid configuration."


_SECRET_PATTERNS: list[re.Pattern[str]] = []


def register_secret(secret: str | None) -> None:
    """Remember a secret (the API key) so that :func:`redact` removes it everywhere."""
    if secret and len(secret) >= 4:
        pattern = re.compile(re.escape(secret))
        if all(p.pattern != pattern.pattern for p in _SECRET_PATTERNS):
            _SECRET_PATTERNS.append(pattern)


def redact(text: str) -> str:
    """Return *text* with every registered secret replaced by ``***``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("***", text)
    return text


#: ftrack_api's spelling; ``AttributeError_`` keeps the builtin usable inside reviewd.
AttributeError = AttributeError_  # noqa: A001


def __getattr__(name: str) -> Any:
    if name == "ParseError":
        from reviewd.api.event.expression import ParseError

        return ParseError
    raise builtins.AttributeError(name)
