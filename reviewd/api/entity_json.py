"""``Session.encode``: JSON text for data holding entities, with ftrack's value strategies.

The top-level entities of the data are written with their values, chosen by the
*strategy* (ftrack's ``entity_attribute_strategy``); entities nested inside them are
written as references (type and primary key), which is also what persistent cache
layers store and what :meth:`reviewd.api.session.Session.decode` merges back.
"""

from __future__ import annotations

import json
from typing import Any

from reviewd.api.entity import Entity
from reviewd.api.symbol import NOT_SET
from reviewd.api.transport import encode_default

#: The strategies :func:`encode` knows.
STRATEGIES = ("set_only", "persisted_only", "modified_only", "all")


def encode(data: Any, strategy: str = "set_only") -> str:
    """JSON text for *data*; its top-level entities are written with their values.

    Strategies: ``set_only`` (loaded and local values), ``persisted_only`` (values as
    the server last sent them), ``modified_only`` (local values only), ``all``
    (populate every attribute first).  Another strategy is a ``ValueError``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown entity_attribute_strategy {strategy!r}; use one of {', '.join(STRATEGIES)}."
        )
    top = data

    def default(value: Any) -> Any:
        if isinstance(value, Entity):
            if value is top or (isinstance(top, list) and any(value is t for t in top)):
                return entity_values(value, strategy)
            return value.__ftrack_wire__()
        return encode_default(value)

    # Sorted keys and json's default separators: the text ftrack_api produces, so
    # caches and tests comparing encoded text see the same bytes.
    return json.dumps(data, default=default, sort_keys=True)


def entity_values(entity: Entity, strategy: str) -> dict[str, Any]:
    """The wire mapping of *entity* with the values *strategy* selects."""
    if strategy == "all":
        entity.session.populate([entity], ", ".join(entity.keys()))
    if strategy == "persisted_only":
        # Computed attributes are the server's to derive, never persisted values.
        computed = set(entity._schema.get("computed", ()))
        values = {k: v for k, v in entity._remote.items() if k not in computed}
    elif strategy == "modified_only":
        values = dict(entity._local) if entity._local else {}
        for name, value in zip(
            entity.primary_key_attributes, entity.primary_key_values(), strict=False
        ):
            values.setdefault(name, value)
    else:
        values = dict(entity._remote)
        if entity._local:
            values.update(entity._local)
    out = {"__entity_type__": entity.entity_type}
    for name, value in values.items():
        if value is NOT_SET:
            continue
        if isinstance(value, list):
            value = [item.__ftrack_wire__() if isinstance(item, Entity) else item for item in value]
        elif isinstance(value, Entity):
            value = value.__ftrack_wire__()
        out[name] = value
    return out
