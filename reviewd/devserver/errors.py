"""The error a request can earn, in the form a real ftrack server answers with.

Every refusal becomes ``{"exception": NAME, "content": MESSAGE, "error_code": CODE}``;
raising :class:`ApiError` anywhere below the HTTP handler is how code asks for one.
"""

from __future__ import annotations

import threading

# The devserver shares no code with the client but the two pure event modules, so it
# keeps its own list of secrets (the API keys it accepts) to strip from any message.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember an API key so that :func:`redact` removes it from every error message."""
    if secret and len(secret) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def redact(text: str) -> str:
    """*text* with every registered secret replaced by ``***``."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class ApiError(Exception):
    """A request the server refuses; *status* is used only in strict-API mode."""

    def __init__(
        self, exception: str, content: str, *, status: int = 400, error_code: str | None = None
    ) -> None:
        super().__init__(content)
        self.exception = exception
        self.content = content
        self.status = status
        self.error_code = error_code

    def with_prefix(self, prefix: str) -> ApiError:
        """The same error, its message prefixed (to name the failing operation)."""
        return ApiError(
            self.exception,
            f"{prefix}{self.content}",
            status=self.status,
            error_code=self.error_code,
        )

    def to_wire(self) -> dict:
        return {
            "exception": self.exception,
            "content": redact(self.content),
            "error_code": self.error_code,
        }


def validation(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def unknown_type(name: object) -> ApiError:
    return ApiError("UnknownEntityTypeError", f"Entity type {name!r} is not known to this server.")


def unknown_attribute(type_id: str, name: str) -> ApiError:
    return ApiError("UnknownAttributeError", f"Entity type {type_id!r} has no attribute {name!r}.")


def not_found(type_id: str, key: object) -> ApiError:
    return ApiError(
        "NoResultFoundError", f"No {type_id} with primary key {key!r} exists.", status=404
    )
