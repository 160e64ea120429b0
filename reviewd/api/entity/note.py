"""Notes: replies on a ``Note`` and ``create_note`` on every entity that has notes."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from reviewd.api.entity.base import Entity

if TYPE_CHECKING:  # the mixin is only ever combined with Entity (see entity.factory)
    _NoteHost = Entity
else:
    _NoteHost = object


class Note(Entity):
    """A note (comment) on an entity."""

    __slots__ = ()

    def create_reply(self, content: str, author: Any) -> Entity:
        """Create a reply note by *author* and append it to this note's replies."""
        reply = self.session.create("Note", {"author": author, "content": content})
        self["replies"].append(reply)
        return reply


class CreateNoteMixin(_NoteHost):
    """Adds ``create_note`` to entity types with a ``notes`` collection."""

    __slots__ = ()

    def create_note(
        self,
        content: str,
        author: Any,
        recipients: list[Any] | None = None,
        category: Any = None,
        labels: list[Any] | None = None,
    ) -> Entity:
        """Create a note on this entity, with optional recipients and labels.

        *category* is the older way of labelling a note: on servers with note
        labels it becomes the one label (with a deprecation warning).
        """
        session = self.session
        labels_supported = "NoteLabel" in session.types
        labels = list(labels or [])
        if labels and not labels_supported:
            raise ValueError("This server has no note labels (NoteLabel).")
        if category and labels:
            raise ValueError("Give either category or labels, not both.")
        data: dict[str, Any] = {"content": content, "author": author}
        if category:
            if labels_supported:
                warnings.warn(
                    "category is deprecated; pass labels=[...] instead.",
                    PendingDeprecationWarning,
                    stacklevel=2,
                )
                labels = [category]
            else:
                data["category_id"] = category["id"]
        note = session.create("Note", data)
        self["notes"].append(note)
        for resource in recipients or []:
            recipient = session.create(
                "Recipient", {"note_id": note["id"], "resource_id": resource["id"]}
            )
            note["recipients"].append(recipient)
        for label in labels:
            session.create("NoteLabelLink", {"label_id": label["id"], "note_id": note["id"]})
        return note
