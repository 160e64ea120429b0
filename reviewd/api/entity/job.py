"""``Job``: only API jobs may be created from a client."""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.base import Entity


class Job(Entity):
    """A background job shown in ftrack's web interface."""

    __slots__ = ()

    def __init__(
        self, session: Any, data: dict[str, Any] | None = None, reconstructing: bool = False
    ) -> None:
        if not reconstructing and (data or {}).get("type") not in ("api_job", None):
            raise ValueError(
                f"Invalid job type {(data or {}).get('type')!r}: clients create 'api_job' jobs."
            )
        super().__init__(session, data, reconstructing)
