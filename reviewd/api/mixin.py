"""Adding behaviour to one existing object by giving it a derived class.

ftrack's locations get their accessor/structure helpers this way (and plugins
do it to entities), so ``reviewd.api.mixin`` is reachable as ``ftrack_api.mixin``.
"""

from __future__ import annotations

from typing import Any


def mixin(instance: Any, mixin_class: type, name: str | None = None) -> None:
    """Make *instance* an instance of a new class deriving from *mixin_class* and its class.

    Only *instance* changes; other objects of its class are untouched.  Mixing
    in a class already in the instance's MRO does nothing, so repeated calls do
    not grow the class chain.
    """
    current = type(instance)
    if mixin_class in current.__mro__:
        return
    class_name = name or f"{current.__name__}{mixin_class.__name__}"
    instance.__class__ = type(class_name, (mixin_class, current), {})
