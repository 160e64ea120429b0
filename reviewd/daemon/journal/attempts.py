"""The attempt log: which handlers were running, written before each handler is called.

Why a file beside the database instead of a journal transaction: the record must be
safe before the handler runs, once per attempt, on the hot path.  A committed SQLite
transaction per attempt cost more than everything else the daemon does for an event.
What the record must survive is the *process* dying inside the handler (``os._exit``,
a segfaulting extension, the OOM killer, ``kill -9``): a ``write()`` to a file is in
the kernel's page cache the moment it returns and survives all of those, exactly like
a committed WAL frame with ``synchronous=NORMAL``.  (A power cut may lose the last
lines; the event then replays without that attempt counted, which is the safe side.)

Each line is ``event-id TAB plugin TAB attempt-number`` when an attempt starts, and the
same with a fourth field when its handlers returned: ``+`` (succeeded) or ``-`` (failed
for good).  The outcome itself reaches the database later, in a shared commit; the
second line closes the window in between.  At the next start the journal reads the log
and, for each delivery still pending whose recorded attempts are fewer than the logged
number: a ``+`` marks it done (its handlers did succeed: no second call), a ``-``
counts the attempt, and a bare start counts a failed attempt - the process died while
handling it.  The log is then emptied.  While running, it is rewritten (atomically)
with just the attempts still running whenever it grows past a bound, so it stays tiny.

How it is written: the file is mapped into memory (``mmap``, shared) and each line is
copied into the mapping.  A store into a shared file mapping is in the kernel's page
cache as soon as it is made, so it survives the process dying exactly as a ``write()``
does, but it is not a system call: a worker running a fast handler does not hand the
interpreter lock to another thread twice per event.  The file's room is allocated up
front (``posix_fallocate``), so a full disk cannot turn a store into a fault; where a
mapping cannot be made (no room, a file system without it), the log falls back to
``write()``.  The unused tail of the file is zero bytes, which the reader ignores.
"""

from __future__ import annotations

import mmap
import os
import threading

#: Rewrite the log once it is this large (only the running attempts are kept).  Small:
#: the mapped file's room is allocated up front, and a journal may live on a small disk.
ROTATE_BYTES = 256 * 1024
RUNNING, SUCCEEDED, FAILED = "running", "+", "-"


class AttemptLog:
    """Append-only record of attempts started; entries leave once their outcome is
    committed to the journal."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], tuple[int, str]] = {}
        self._map: mmap.mmap | None = None
        self._fd = self._open(path, truncate=False)
        self._size = self._used(self._fd)
        self._map_file()

    @staticmethod
    def _open(path: str, truncate: bool) -> int:
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        fd = os.open(path, flags, 0o600)
        os.fchmod(fd, 0o600)
        return fd

    @staticmethod
    def _used(fd: int) -> int:
        """Bytes of lines in the file (a mapped file ends in zero bytes)."""
        size = os.fstat(fd).st_size
        if not size:
            return 0
        data = os.pread(fd, size, 0)
        end = data.find(b"\0")
        return size if end < 0 else end

    def _map_file(self) -> None:
        """Map the file with room for ROTATE_BYTES of lines; stay with ``write()`` if
        the room cannot be allocated or the file cannot be mapped."""
        capacity = max(ROTATE_BYTES, self._size) + _MAX_LINE
        try:
            os.posix_fallocate(self._fd, 0, capacity)
            self._map = mmap.mmap(self._fd, capacity, mmap.MAP_SHARED, mmap.PROT_WRITE)
        except (OSError, ValueError, AttributeError):
            self._map = None

    @staticmethod
    def read(path: str) -> dict[tuple[str, str], tuple[int, str]]:
        """The last logged (attempt number, state) per (event id, plugin) in the file
        at *path*; state is RUNNING, SUCCEEDED or FAILED."""
        found: dict[tuple[str, str], tuple[int, str]] = {}
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return found
        text = data.split(b"\0", 1)[0].decode("utf-8", "replace")
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # a line cut short by the crash
            parts = line[:-1].split("\t")
            if len(parts) not in (3, 4) or not parts[2].isdigit():
                continue
            state = parts[3] if len(parts) == 4 else RUNNING
            if state not in (RUNNING, SUCCEEDED, FAILED):
                continue
            key = (parts[0], parts[1])
            attempt = int(parts[2])
            if attempt >= found.get(key, (0, RUNNING))[0]:
                found[key] = (attempt, state)
        return found

    def begin(self, event_id: str, plugin: str, attempt: int) -> None:
        """Log that attempt number *attempt* of (event, plugin) starts now."""
        self._append((event_id, plugin), attempt, RUNNING)

    def finish(self, event_id: str, plugin: str, succeeded: bool) -> None:
        """Log that the running attempt's handlers returned (its outcome is on its way
        to the database)."""
        key = (event_id, plugin)
        with self._lock:
            attempt = self._running.get(key, (0, RUNNING))[0]
        if attempt:
            self._append(key, attempt, SUCCEEDED if succeeded else FAILED)

    def _append(self, key: tuple[str, str], attempt: int, state: str) -> None:
        line = _line(key, attempt, state)
        size = len(line)
        with self._lock:
            self._running[key] = (attempt, state)
            mapped = self._map
            if mapped is not None and self._size + size <= len(mapped):
                mapped[self._size : self._size + size] = line
            else:  # not mapped, or a line too long for the room left: rotated next
                os.pwrite(self._fd, line, self._size)
            self._size += size
            if self._size > ROTATE_BYTES:
                self._rotate()

    def end(self, event_id: str, plugin: str) -> None:
        """The attempt's outcome is committed: it no longer needs the log."""
        with self._lock:
            self._running.pop((event_id, plugin), None)

    def end_many(self, keys: list[tuple[str, str]]) -> None:
        """:meth:`end` for many (event id, plugin) pairs (one lock)."""
        running = self._running
        with self._lock:
            for key in keys:
                running.pop(key, None)

    def reset(self) -> None:
        """Empty the log (after the journal counted what it held)."""
        with self._lock:
            self._running.clear()
            self._rotate()

    def _rotate(self) -> None:
        text = b"".join(
            _line(key, attempt, state) for key, (attempt, state) in self._running.items()
        )
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._unmap()
        os.close(self._fd)
        self._fd = self._open(self.path, truncate=False)
        self._size = len(text)
        self._map_file()

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def close(self) -> None:
        with self._lock:
            self._unmap()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


#: Room kept past ROTATE_BYTES in the mapping, so that the line that crosses it fits.
_MAX_LINE = 4096


def _line(key: tuple[str, str], attempt: int, state: str) -> bytes:
    tail = "" if state == RUNNING else f"\t{state}"
    return f"{key[0]}\t{key[1]}\t{attempt}{tail}\n".encode()
