"""Sentinel values shared by the client (ftrack-familiar names)."""

from __future__ import annotations

import os as _os
from typing import Any


class Symbol:
    """A named sentinel that is falsy, copy-stable and readable in reprs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __reduce__(self) -> Any:
        return self.name


#: An attribute value that has not been loaded from the server.
NOT_SET = Symbol("NOT_SET")
#: Entity states.
CREATED = Symbol("CREATED")
MODIFIED = Symbol("MODIFIED")
DELETED = Symbol("DELETED")
#: Marker for "nothing" where None is a legal value.
NOTHING = Symbol("NOTHING")

#: Event topics a location publishes when components arrive or leave.
COMPONENT_ADDED_TO_LOCATION_TOPIC = "ftrack.location.component-added"
COMPONENT_REMOVED_FROM_LOCATION_TOPIC = "ftrack.location.component-removed"

#: Well-known ids of the built-in locations every ftrack server has.
ORIGIN_LOCATION_ID = "ce9b348f-8809-11e3-821c-20c9d081909b"
UNMANAGED_LOCATION_ID = "cb268ecc-8809-11e3-a7e2-20c9d081909b"
REVIEW_LOCATION_ID = "cd41be70-8809-11e3-b98a-20c9d081909b"
CONNECT_LOCATION_ID = "07b82a97-8cf9-11e3-9383-20c9d081909b"
SERVER_LOCATION_ID = "3a372bde-05bc-11e4-8908-20c9d081909b"

#: Bytes per read/write when copying component data (FTRACK_API_FILE_CHUNK_SIZE overrides).
CHUNK_SIZE = int(_os.environ.get("FTRACK_API_FILE_CHUNK_SIZE", 0) or 0) or 1024 * 1024

#: The job type of an LDAP user synchronisation.
JOB_SYNC_USERS_LDAP = Symbol("SYNC_USERS_LDAP")
