"""Logging helpers with ftrack_api's names: lazy messages and deprecation wrappers."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any


class LazyLogMessage:
    """A ``str.format`` message formatted only if a handler actually emits it.

    Pass it as the log message: building an expensive representation is then
    skipped whenever the level is disabled.
    """

    def __init__(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.message = message
        self.args = args
        self.kwargs = kwargs

    def __str__(self) -> str:
        return self.message.format(*self.args, **self.kwargs)


def deprecation_warning(message: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a function so each call warns (``PendingDeprecationWarning``) with *message*."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def warned(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(message, PendingDeprecationWarning, stacklevel=2)
            return function(*args, **kwargs)

        return warned

    return decorate
