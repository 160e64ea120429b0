"""Exceptions raised by reviewd.

One hierarchy for the whole client so that callers can catch ``reviewd.api.exception.Error``
(or the ftrack-familiar names below) without knowing which layer failed.  Messages are
written for the person who must fix the problem and never contain the API key: code
that formats a message from request data must pass it through :func:`redact` first.
"""

from __future__ import annotations

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

    def __init__(self, message: Any=None, details: Any=None, exception_name: Any=None, error_code: Any=None) -> None:
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
class SessionClosedError(Error):
    default_message = "The session is closed; create a new Session to continue."


class EntityTypeError(Error):
    default_message = "Unknown or invalid entity type."


class UnrecognisedEntityTypeError(EntityTypeError):
    pass


class AttributeError_(Error):  # noqa: N801 - avoid shadowing the builtin
    default_message = "Unknown or invalid attribute."


class ImmutableAttributeError(Error):
    default_message = "Cannot set an immutable attribute."


class NotFoundError(Error):
    default_message = "No matching entity was found."


class NoResultFoundError(NotFoundError):
    """``query(...).one()`` found nothing (ftrack_api's name for it)."""

    default_message = "The query returned no result where exactly one was expected."


class MultipleResultsFoundError(Error):
    default_message = "More than one entity matched where exactly one was expected."


class OperationError(Error):
    default_message = "An operation could not be recorded or committed."


class InvalidStateError(Error):
    default_message = "The entity is in a state that does not allow this."


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


def __getattr__(name: str) -> Any:
    if name == "ParseError":
        from reviewd.api.event.expression import ParseError

        return ParseError
    raise AttributeError(name)
