"""Collections: the live list and mapping values entity attributes hand out.

They are defined beside the attribute descriptions (:mod:`reviewd.api.attribute`)
because both read the entity's value dicts directly; this module is where
ftrack_api's code looks for them.
"""

from __future__ import annotations

from reviewd.api.attribute import Collection, KeyValueMappedCollectionProxy

#: ftrack_api's base name for mapping views of a collection.
MappedCollectionProxy = KeyValueMappedCollectionProxy

__all__ = ["Collection", "KeyValueMappedCollectionProxy", "MappedCollectionProxy"]
