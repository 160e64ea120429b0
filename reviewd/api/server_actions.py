"""Session methods that are one server action each: widget URLs, invitations,
media encoding, upload metadata, remote resets, and the server version check.

Each builds the operation ftrack's server expects, sends it through
``Session.call`` and returns the documented part of the answer.  A server that
does not know the action answers with an error naming it; that becomes a
:class:`ServerCompatibilityError` saying which action is missing.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

from reviewd.api.exception import ServerCompatibilityError, ServerError
from reviewd.api.symbol import SERVER_LOCATION_ID

if TYPE_CHECKING:
    from reviewd.api.transport import ApiClient

_MINIMUM_SERVER = (3, 3, 11)


class ServerActions:
    """Mixed into ``Session``."""

    if TYPE_CHECKING:  # what this mixin uses of the Session it is mixed into
        _timeout: float | None
        _client: ApiClient | None

        @property
        def server_url(self) -> str: ...
        @property
        def server_information(self) -> dict[str, Any]: ...
        def call(self, data: list[dict[str, Any]]) -> list[Any]: ...
        def get(self, entity_type: str, entity_key: Any) -> Any: ...
        def commit(self) -> None: ...
        def auto_populating(
            self, auto_populate: bool
        ) -> contextlib.AbstractContextManager[None]: ...
        def create_component(self, *args: Any, **kwargs: Any) -> Any: ...

    def _call_action(self, action: str, operations: list[dict[str, Any]]) -> list[Any]:
        try:
            return self.call(operations)
        except ServerError as error:
            text = str(error)
            if action in text and ("nvalid action" in text or "nknown action" in text):
                raise ServerCompatibilityError(
                    f"Server version {self.server_information.get('version')!r} does not "
                    f"support {action!r}; update the server and try again."
                ) from error
            raise

    def check_server_compatibility(self) -> None:
        """Raise :class:`ServerCompatibilityError` for servers older than 3.3.11."""
        version = self.server_information.get("version")
        if version is None:
            raise ServerCompatibilityError("Could not determine the server version.")
        if version == "dev":
            return
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", str(version))
        if match and tuple(map(int, match.groups())) < _MINIMUM_SERVER:
            raise ServerCompatibilityError(
                f"Server version {version} is older than the "
                f"{'.'.join(map(str, _MINIMUM_SERVER))} this client needs."
            )

    def entity_reference(self, entity: Any) -> dict[str, Any]:
        """``{"__entity_type__": type, <primary key>...}`` for *entity*."""
        from reviewd.api.inspection import primary_key

        reference = {"__entity_type__": entity.entity_type}
        with self.auto_populating(False):
            reference.update(primary_key(entity))
        return reference

    def reset_remote(self, reset_type: str, entity: Any = None) -> Any:
        """Ask the server to reset *reset_type* (e.g. ``"api_key"``), optionally on *entity*."""
        operation: dict[str, Any] = {"action": "reset_remote", "reset_type": reset_type}
        if entity is not None:
            operation.update(entity_type=entity.entity_type, entity_key=entity.get("id"))
        return self._call_action("reset_remote", [operation])[0]["data"]

    def get_widget_url(self, name: str, entity: Any = None, theme: str | None = None) -> str:
        """A signed URL of the web widget *name* (``info``, ``tasks``...), for *entity*."""
        from reviewd.api.inspection import primary_key

        operation: dict[str, Any] = {"action": "get_widget_url", "name": name, "theme": theme}
        if entity is not None:
            operation["entity_type"] = entity.entity_type
            operation["entity_key"] = list(primary_key(entity).values())
        answer: str = self._call_action("get_widget_url", [operation])[0]["widget_url"]
        return answer

    def send_user_invite(self, user: Any) -> None:
        self.send_user_invites([user])

    def send_user_invites(self, users: list[Any]) -> None:
        """Email each user an invitation to the server."""
        self._call_action(
            "send_user_invite",
            [{"action": "send_user_invite", "user_id": user["id"]} for user in users],
        )

    def send_review_session_invite(self, invitee: Any) -> None:
        self.send_review_session_invites([invitee])

    def send_review_session_invites(self, invitees: list[Any]) -> None:
        """Email each (committed) ``ReviewSessionInvitee`` their review link."""
        self._call_action(
            "send_review_session_invite",
            [
                {"action": "send_review_session_invite", "review_session_invitee_id": invitee["id"]}
                for invitee in invitees
            ],
        )

    def get_upload_metadata(
        self, component_id: str, file_name: str, file_size: int, checksum: str | None = None
    ) -> dict[str, Any]:
        """Where and how to PUT a component's bytes: ``{"url": ..., "headers": {...}}``."""
        answer: dict[str, Any] = self._call_action(
            "get_upload_metadata",
            [
                {
                    "action": "get_upload_metadata",
                    "component_id": component_id,
                    "file_name": file_name,
                    "file_size": file_size,
                    "checksum": checksum,
                }
            ],
        )[0]
        return answer

    def encode_media(
        self, media: Any, version_id: str | None = None, keep_original: Any = "auto"
    ) -> Any:
        """Have the server encode *media* (a path or a FileComponent) for review; the Job.

        A path is uploaded to the server location first (and committed); with
        *version_id* the encoded components are attached to that version.
        """
        if isinstance(media, str):
            if keep_original == "auto":
                keep_original = False
            data = {"version_id": version_id} if keep_original else None
            component = self.create_component(
                media, data=data, location=self.get("Location", SERVER_LOCATION_ID)
            )
            self.commit()
        elif getattr(media, "entity_type", None) == "FileComponent":
            component = media
            if keep_original == "auto":
                keep_original = True
        else:
            raise ValueError(f"Cannot encode media of type {type(media).__name__}.")
        result = self._call_action(
            "encode_media",
            [
                {
                    "action": "encode_media",
                    "component_id": component["id"],
                    "version_id": version_id,
                    "keep_original": keep_original,
                }
            ],
        )
        return self.get("Job", result[0]["job_id"])

    def get_component_url(self, resource_identifier: str) -> str:
        """The server's download URL for a component stored in the server location."""
        return f"{self.server_url}/component/get?id={resource_identifier}"

    @property
    def request_timeout(self) -> float | None:
        """Seconds an API request may take (ftrack_api's name for ``timeout``)."""
        return self._timeout

    @request_timeout.setter
    def request_timeout(self, seconds: float | None) -> None:
        # ftrack_api keeps it as a plain attribute that scripts (and its own tests)
        # assign; the API client and the server accessor read it from here.
        self._timeout = seconds
        if self._client is not None:
            self._client.timeout = seconds
