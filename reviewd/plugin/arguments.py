"""Fitting plugin arguments to what a classic ``register()`` accepts.

Plugin arguments are a mapping from configuration shared by many plugins; ftrack
calls ``register(session, **kwargs)`` with whatever a function declares, so the
loader passes each function only what its signature takes and names the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["cull_arguments"]


def cull_arguments(
    function: Callable,
    positional_arguments: Sequence[Any] = (),
    keyword_arguments: Mapping[str, Any] | None = None,
) -> tuple[tuple, dict, list[str]]:
    """Fit the arguments to what *function*'s signature accepts.

    Returns ``(args, kwargs, dropped)`` where *dropped* names what was left out:
    keyword names the function does not accept (a ``**kwargs`` function accepts
    them all) and, for a function taking fewer positionals than given, the
    surplus positions as ``"<positional N>"``.  A keyword that would collide
    with a positional already passed is dropped too.
    """
    keyword_arguments = dict(keyword_arguments or {})
    positional_arguments = tuple(positional_arguments)
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: pass everything
        return positional_arguments, keyword_arguments, []
    kinds = {p.kind for p in parameters}
    positional_parameters = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    dropped: list[str] = []
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        args = positional_arguments
    else:
        args = positional_arguments[: len(positional_parameters)]
        dropped.extend(
            f"<positional {index}>" for index in range(len(args), len(positional_arguments))
        )
    consumed = {p.name for p in positional_parameters[: len(args)]}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        accepted = None
    else:
        accepted = {
            p.name
            for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
    kwargs = {}
    for key, value in keyword_arguments.items():
        if key in consumed or (accepted is not None and key not in accepted):
            dropped.append(key)
        else:
            kwargs[key] = value
    return args, kwargs, dropped
