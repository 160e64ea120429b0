"""Accessing component data stored on the ftrack server itself.

Reads download ``{server}/component/get?id=...``; writes ask the server for
upload metadata (``get_upload_metadata``) and PUT the bytes to the URL it
returns, with an MD5 checksum, when the data object is flushed or closed.
The API key travels only in request parameters/headers, never in errors.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from reviewd.api.accessor.base import Accessor
from reviewd.api.data import String
from reviewd.api.exception import AccessorOperationFailedError, redact
from reviewd.api.symbol import CHUNK_SIZE


def _failed(what: str, error: Exception) -> AccessorOperationFailedError:
    return AccessorOperationFailedError(message=redact(f"{what}: {error}"))


class ServerFile(String):
    """Component data on the server, buffered in a temporary file."""

    def __init__(self, resource_identifier: str, session: Any, mode: str = "rb") -> None:
        self.mode = mode
        self.resource_identifier = resource_identifier
        self._session = session
        self._timeout = getattr(session, "request_timeout", 60)
        self._downloaded = False
        super().__init__()

    def _params(self) -> dict[str, Any]:
        return {
            "id": self.resource_identifier,
            "username": self._session.api_user,
            "apiKey": self._session.api_key,
        }

    def read(self, limit: int | None = None) -> Any:
        if not self._downloaded:
            self._download()
            self._downloaded = True
        return super().read(limit)

    def _download(self) -> None:
        import requests

        position = self.tell()
        self.seek(0)
        try:
            response = requests.get(
                f"{self._session.server_url}/component/get",
                params=self._params(),
                stream=True,
                timeout=self._timeout,
            )
            response.raise_for_status()
        except Exception as error:
            raise _failed("Failed to read data", error) from None
        for block in response.iter_content(CHUNK_SIZE):
            self.wrapped_file.write(block)
        self.wrapped_file.flush()
        self.seek(position)

    def flush(self) -> None:
        super().flush()
        if "r" not in self.mode:
            self._upload()

    def _size(self) -> int:
        position = self.tell()
        self.seek(0, os.SEEK_END)
        size = self.tell()
        self.seek(position)
        return size

    def _checksum(self) -> str:
        digest = hashlib.md5()  # noqa: S324 - the upload protocol's content check
        position = self.wrapped_file.tell()
        self.wrapped_file.seek(0)
        for block in iter(lambda: self.wrapped_file.read(CHUNK_SIZE), b""):
            digest.update(block)
        self.wrapped_file.seek(position)
        return base64.b64encode(digest.digest()).decode("ascii")

    def _upload(self) -> None:
        import requests

        component = self._session.get("FileComponent", self.resource_identifier)
        if not component:
            raise AccessorOperationFailedError(
                message=f"No component with id {self.resource_identifier}."
            )
        name = component["name"]
        if component["file_type"]:
            name = f"{name}.{component['file_type'].lstrip('.')}"
        try:
            metadata = self._session.get_upload_metadata(
                component_id=self.resource_identifier,
                file_name=name,
                file_size=self._size(),
                checksum=self._checksum(),
            )
        except Exception as error:
            raise _failed("Failed to get upload metadata", error) from None
        position = self.tell()
        self.seek(0)
        try:
            response = requests.put(
                metadata["url"],
                data=self.wrapped_file,
                headers=metadata.get("headers") or {},
                timeout=self._timeout,
            )
            response.raise_for_status()
        except Exception as error:
            raise _failed("Failed to upload data", error) from None
        self.seek(position)


class _ServerAccessor(Accessor):
    """The server location's accessor (data addressed by component id)."""

    def __init__(self, session: Any, **kwargs: Any) -> None:
        super().__init__()
        self._session = session
        self._timeout = getattr(session, "request_timeout", 60)

    def open(self, resource_identifier: str, mode: str = "rb") -> ServerFile:
        return ServerFile(resource_identifier, session=self._session, mode=mode)

    def remove(self, resource_identifier: str) -> None:
        import requests

        try:
            response = requests.get(
                f"{self._session.server_url}/component/remove",
                params={
                    "id": resource_identifier,
                    "username": self._session.api_user,
                    "apiKey": self._session.api_key,
                },
                timeout=self._timeout,
            )
            response.raise_for_status()
        except Exception as error:
            raise _failed("Failed to remove data", error) from None

    def get_container(self, resource_identifier: str) -> None:
        return None

    def make_container(self, resource_identifier: str, recursive: bool = True) -> None:
        """The server has no containers; nothing to make."""

    def list(self, resource_identifier: str) -> list[str]:
        raise NotImplementedError("The server location cannot list its data.")

    def exists(self, resource_identifier: str) -> bool:
        return False

    def is_file(self, resource_identifier: str) -> bool:
        raise NotImplementedError

    def is_container(self, resource_identifier: str) -> bool:
        raise NotImplementedError

    def is_sequence(self, resource_identifier: str) -> bool:
        raise NotImplementedError

    def get_url(self, resource_identifier: str) -> str:
        answer: str = self._session.get_component_url(resource_identifier)
        return answer

    def get_thumbnail_url(self, resource_identifier: str, size: int | None = None) -> str:
        url = f"{self._session.server_url}/component/thumbnail?id={resource_identifier}"
        return url + (f"&size={size}" if size else "")


ServerAccessor = _ServerAccessor
