"""File-like data objects that accessors read from and write to.

Accessors hand these out from ``open()``; ``String`` is an in-memory stand-in
for tests and small payloads.  Text written to a ``String`` is read back as
text, bytes as bytes, which is what callers of ftrack's accessors expect.
"""

from __future__ import annotations

import abc
import os
import tempfile
from typing import IO, Any


class Data(abc.ABC):
    """A readable/writable stream; ``seek`` and ``tell`` are optional capabilities."""

    def __init__(self) -> None:
        self.closed = False

    @abc.abstractmethod
    def read(self, limit: int | None = None) -> Any:
        """Up to *limit* units (all remaining when None)."""

    @abc.abstractmethod
    def write(self, content: Any) -> None:
        """Append *content* at the current position."""

    def flush(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Push buffered writes out (nothing to do by default)."""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> None:
        raise NotImplementedError("Seek not supported by this data object.")

    def tell(self) -> int:
        raise NotImplementedError("Tell not supported by this data object.")

    def close(self) -> None:
        self.flush()
        self.closed = True


class FileWrapper(Data):
    """Adapts any file object to :class:`Data`."""

    def __init__(self, wrapped_file: IO[Any]) -> None:
        self.wrapped_file = wrapped_file
        self._just_read = False
        super().__init__()

    def read(self, limit: int | None = None) -> Any:
        self._just_read = True
        return self.wrapped_file.read(-1 if limit is None else limit)

    def write(self, content: Any) -> None:
        if self._just_read:
            # Some platforms need a positioning call between a read and a write.
            self.seek(self.tell())
        self.wrapped_file.write(content)
        self._just_read = False

    def flush(self) -> None:
        flush = getattr(self.wrapped_file, "flush", None)
        if flush is not None:
            flush()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> None:
        self.wrapped_file.seek(offset, whence)

    def tell(self) -> int:
        return self.wrapped_file.tell()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        close = getattr(self.wrapped_file, "close", None)
        if close is not None:
            close()


class File(FileWrapper):
    """A file on disk opened at *path* with *mode*."""

    def __init__(self, path: str, mode: str = "rb") -> None:
        super().__init__(open(path, mode))  # noqa: SIM115 - closed by close()


class String(FileWrapper):
    """Data held in a temporary file; text in means text out."""

    def __init__(self, content: str | bytes | None = None) -> None:
        self.is_binary = True
        super().__init__(tempfile.TemporaryFile())
        if content is not None:
            self.wrapped_file.write(self._as_bytes(content))
            self.wrapped_file.seek(0)

    def _as_bytes(self, content: str | bytes) -> bytes:
        if isinstance(content, bytes):
            return content
        self.is_binary = False
        return content.encode("utf-8")

    def write(self, content: str | bytes) -> None:
        super().write(self._as_bytes(content))

    def read(self, limit: int | None = None) -> str | bytes:
        raw: bytes = super().read(limit)
        return raw if self.is_binary else raw.decode("utf-8")
