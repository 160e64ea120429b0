"""The embedded ftrack-compatible server: HTTP API, query language, SQLite storage, events.

``DevServer`` is the one entry point: ``with DevServer() as server: server.url``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DevServer"]


def __getattr__(name: str) -> Any:
    if name == "DevServer":
        from reviewd.devserver.server import DevServer

        return DevServer
    raise AttributeError(f"module 'reviewd.devserver' has no attribute {name!r}")
