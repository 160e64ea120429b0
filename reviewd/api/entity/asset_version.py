"""``AssetVersion``: components and media encoding on a version."""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.base import Entity


class AssetVersion(Entity):
    """One version of an asset (what reviews are about)."""

    __slots__ = ()

    def create_component(
        self, path: str, data: dict[str, Any] | None = None, location: Any = None
    ) -> Entity:
        """Create a component from *path* belonging to this version (whatever *data*
        says about the version)."""
        data = dict(data or {})
        data.pop("version_id", None)
        data["version"] = self
        answer: Entity = self.session.create_component(path, data=data, location=location)
        return answer

    def encode_media(self, media: Any, keep_original: Any = "auto") -> Entity:
        """Ask the server to encode *media* (a path or a component) for review.

        Returns the job; the encoded components are attached to this version.
        """
        answer: Entity = self.session.encode_media(
            media, version_id=self["id"], keep_original=keep_original
        )
        return answer
