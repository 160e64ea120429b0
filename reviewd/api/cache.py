"""Caches for entities and key makers that turn identities into cache keys.

The Session's ``cache`` is a :class:`LayeredCache` whose top layer is a
:class:`MemoryCache` (the identity map: one Python object per server entity) and whose
lower layers are whatever the user configured, typically a persistent
``SerialisedCache(FileCache(path), encode=session.encode, decode=session.decode)``.

Interface, as ftrack users know it: ``get(key)`` raises ``KeyError`` when absent,
``set(key, value)``, ``remove(key)`` raises ``KeyError`` when absent, ``keys()``,
``values()``, ``clear(pattern=None)``.
"""

from __future__ import annotations

import abc
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class Cache(abc.ABC):
    """A key/value store with ftrack's cache interface."""

    @abc.abstractmethod
    def get(self, key: Any) -> Any:
        """Return the value stored under *key*; raise ``KeyError`` if there is none."""

    @abc.abstractmethod
    def set(self, key: Any, value: Any) -> None:
        """Store *value* under *key*, replacing any previous value."""

    @abc.abstractmethod
    def remove(self, key: Any) -> None:
        """Remove *key*; raise ``KeyError`` if it was not present."""

    def keys(self) -> list[Any]:
        """All keys currently stored (a snapshot)."""
        raise NotImplementedError

    def values(self) -> list[Any]:
        """All values currently stored (a snapshot)."""
        values: list[Any] = []
        for key in self.keys():
            try:
                values.append(self.get(key))
            except KeyError:
                continue
        return values

    def clear(self, pattern: str | None = None) -> None:
        """Remove every key, or only the string keys matching the regex *pattern*."""
        compiled = re.compile(pattern) if pattern is not None else None
        for key in self.keys():
            if compiled is not None and not (isinstance(key, str) and compiled.search(key)):
                continue
            try:
                self.remove(key)
            except KeyError:
                pass


class MemoryCache(Cache):
    """A plain dictionary: fast, per process, gone when the process ends.

    The Session reads and writes :attr:`data` directly on its hot path (merging query
    results), so this class must stay a thin wrapper around one dict.
    """

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        self.data: dict[Any, Any] = dict(data or {})

    def get(self, key: Any) -> Any:
        return self.data[key]

    def set(self, key: Any, value: Any) -> None:
        self.data[key] = value

    def remove(self, key: Any) -> None:
        del self.data[key]

    def keys(self) -> list[Any]:
        return list(self.data)

    def values(self) -> list[Any]:
        return list(self.data.values())

    def clear(self, pattern: str | None = None) -> None:
        if pattern is None:
            self.data.clear()
        else:
            super().clear(pattern)

    def __len__(self) -> int:
        return len(self.data)


class IdentityMapCache(MemoryCache):
    """The Session's memory layer: entities keyed by identity tuple ``(type, *key)``.

    Code written for ftrack_api addresses it with ``session.cache_key_maker`` keys;
    :meth:`get` and :meth:`remove` accept those too (*key_of* turns an identity tuple
    into one), looked up by a scan, so the hot path stays one dict.
    """

    def __init__(self, key_of: Callable[[Any], Any]) -> None:
        super().__init__()
        self._key_of = key_of

    def _identity(self, key: Any) -> Any:
        if key in self.data:
            return key
        if isinstance(key, (str, bytes)):
            for identity in list(self.data):
                if isinstance(identity, tuple) and self._key_of(identity) == key:
                    return identity
        raise KeyError(key)

    def get(self, key: Any) -> Any:
        return self.data[self._identity(key)]

    def remove(self, key: Any) -> None:
        del self.data[self._identity(key)]


class LayeredCache(Cache):
    """Several caches searched in order; a hit in a lower layer fills the layers above."""

    def __init__(self, caches: Iterable[Cache]) -> None:
        self.caches: list[Cache] = list(caches)

    def get(self, key: Any) -> Any:
        for index, cache in enumerate(self.caches):
            try:
                value = cache.get(key)
            except KeyError:
                continue
            for upper in self.caches[:index]:
                upper.set(key, value)
            return value
        raise KeyError(key)

    def set(self, key: Any, value: Any) -> None:
        for cache in self.caches:
            cache.set(key, value)

    def remove(self, key: Any) -> None:
        found = False
        for cache in self.caches:
            try:
                cache.remove(key)
            except KeyError:
                continue
            found = True
        if not found:
            raise KeyError(key)

    def keys(self) -> list[Any]:
        seen: dict[Any, None] = {}
        for cache in self.caches:
            for key in cache.keys():
                seen.setdefault(key, None)
        return list(seen)

    def clear(self, pattern: str | None = None) -> None:
        for cache in self.caches:
            cache.clear(pattern)


class ProxyCache(Cache):
    """Forward every call to another cache (a base for wrappers)."""

    def __init__(self, proxied: Cache) -> None:
        self.proxied = proxied

    def get(self, key: Any) -> Any:
        return self.proxied.get(key)

    def set(self, key: Any, value: Any) -> None:
        self.proxied.set(key, value)

    def remove(self, key: Any) -> None:
        self.proxied.remove(key)

    def keys(self) -> list[Any]:
        return self.proxied.keys()

    def clear(self, pattern: str | None = None) -> None:
        self.proxied.clear(pattern)


class SerialisedCache(ProxyCache):
    """Encode values on the way into another cache and decode them on the way out.

    With the Session's ``encode``/``decode`` this stores entities as JSON text in a
    persistent cache and turns them back into live entities of the reading session.
    """

    def __init__(
        self,
        proxied: Cache,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(proxied)
        self.encode = encode
        self.decode = decode

    def get(self, key: Any) -> Any:
        value = self.proxied.get(key)
        return self.decode(value) if self.decode is not None else value

    def set(self, key: Any, value: Any) -> None:
        if self.encode is not None:
            value = self.encode(value)
        self.proxied.set(key, value)

    def values(self) -> list[Any]:
        return [self.decode(v) if self.decode else v for v in self.proxied.values()]


class FileCache(Cache):
    """A persistent cache in one SQLite file; text or bytes values, text or bytes keys.

    SQLite gives atomic writes (a crash never leaves half a value) and lets readers run
    while one process writes, which is what "safe for one writer" needs.  Keys that are
    not ``str`` or ``bytes`` are stored by their ``repr``-free string form via ``str``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        import sqlite3  # only persistent caches need it; kept off the start-up path

        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS cache (key BLOB PRIMARY KEY, value BLOB)")

    @staticmethod
    def _key(key: Any) -> bytes:
        if isinstance(key, bytes):
            return key
        return str(key).encode("utf-8")

    def get(self, key: Any) -> Any:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM cache WHERE key = ?", (self._key(key),)
            ).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def set(self, key: Any, value: Any) -> None:
        if not isinstance(value, (str, bytes)):
            raise TypeError(
                f"FileCache stores text or bytes, not {type(value).__name__}; "
                "wrap it in a SerialisedCache with an encoder."
            )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cache (key, value) VALUES (?, ?)", (self._key(key), value)
            )

    def remove(self, key: Any) -> None:
        with self._lock:
            cursor = self._db.execute("DELETE FROM cache WHERE key = ?", (self._key(key),))
        if cursor.rowcount == 0:
            raise KeyError(key)

    def keys(self) -> list[Any]:
        with self._lock:
            rows = self._db.execute("SELECT key FROM cache").fetchall()
        return [row[0].decode("utf-8", "surrogateescape") for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM cache").fetchone()[0])


# ------------------------------------------------------------------------ key makers
class KeyMaker(abc.ABC):
    """Turn arbitrary items into one cache key."""

    def __init__(self) -> None:
        # Any: text for StringKeyMaker, bytes for ObjectKeyMaker (which narrows it).
        self.item_separator: Any = ""

    def key(self, *items: Any) -> Any:
        """Return the key for *items*."""
        return self.item_separator.join(self._key(item) for item in items)

    @abc.abstractmethod
    def _key(self, item: Any) -> Any:
        """Return the key for one *item*."""


class StringKeyMaker(KeyMaker):
    """Keys are ``str`` of the items; readable, and usable by any persistent cache."""

    def _key(self, item: Any) -> str:
        return str(item)


class ObjectKeyMaker(KeyMaker):
    """Byte keys that distinguish structure, in ftrack_api's key format.

    Scalars are their pickle (protocol 2), so ``1`` and ``"1"`` differ; mappings
    (sorted by key) and other iterables are wrapped in markers; functions, classes
    and methods are keyed by name and module, builtins by name.  Keeping the
    format means keys written by ftrack_api's caches are found by reviewd's.
    """

    _MAPPING = b"\x01"
    _PAIR = b"\x02"
    _SEQUENCE = b"\x03"
    _NAME = b"\x04"
    _PROTOCOL = 2

    def __init__(self) -> None:
        super().__init__()
        self.item_separator = b"\x00"

    def key(self, *items: Any) -> bytes:
        answer: bytes = self.item_separator.join(self._key(item) for item in items)
        return answer

    def _key(self, item: Any) -> bytes:
        import inspect
        import pickle

        if isinstance(item, str):
            return pickle.dumps(item, self._PROTOCOL)
        if isinstance(item, Mapping):
            pairs = [
                self._key(key) + self._PAIR + self._key(value)
                for key, value in sorted(item.items())
            ]
            answer: bytes = self._MAPPING + self.item_separator.join(pairs) + self._MAPPING
            return answer
        if isinstance(item, Iterable) and not isinstance(item, (bytes, bytearray)):
            inner = self.item_separator.join(self._key(value) for value in item)
            sequence: bytes = self._SEQUENCE + inner + self._SEQUENCE
            return sequence
        sep = self.item_separator
        if inspect.ismethod(item):
            return b"".join(
                (
                    self._NAME,
                    item.__name__.encode(),
                    sep,
                    item.__self__.__class__.__name__.encode(),
                    sep,
                    item.__module__.encode(),
                )
            )
        if inspect.isfunction(item) or inspect.isclass(item):
            return b"".join((self._NAME, item.__name__.encode(), sep, item.__module__.encode()))
        if inspect.isbuiltin(item):
            return self._NAME + item.__name__.encode()
        return pickle.dumps(item, self._PROTOCOL)


class Memoiser:
    """Remembers a function's results by its arguments, in any :class:`Cache`.

    Positional and keyword spellings of the same call share one entry (the key is
    built from the bound arguments).  With *return_copies* each caller gets a deep
    copy, so mutating a result cannot change what the next caller receives.
    """

    def __init__(
        self,
        cache: Cache | None = None,
        key_maker: KeyMaker | None = None,
        return_copies: bool = True,
    ) -> None:
        self.cache = cache if cache is not None else MemoryCache()
        self.key_maker = key_maker if key_maker is not None else ObjectKeyMaker()
        self.return_copies = return_copies

    def call(
        self, function: Any, args: tuple[Any, ...] | None = None, kw: dict[str, Any] | None = None
    ) -> Any:
        """``function(*args, **kw)``, from the cache when this call was seen before."""
        import copy
        import inspect

        args = tuple(args or ())
        kw = dict(kw or {})
        bound = inspect.signature(function).bind(*args, **kw)
        bound.apply_defaults()
        key = self.key_maker.key(function, dict(bound.arguments))
        try:
            value = self.cache.get(key)
        except KeyError:
            value = function(*args, **kw)
            self.cache.set(key, value)
        return copy.deepcopy(value) if self.return_copies else value


def memoise_decorator(memoiser: Memoiser) -> Any:
    """Decorator memoising a function through *memoiser*."""
    import functools

    def decorate(function: Any) -> Any:
        @functools.wraps(function)
        def memoised(*args: Any, **kw: Any) -> Any:
            return memoiser.call(function, args, kw)

        return memoised

    return decorate


#: The module-level memoiser ftrack_api offers for expensive pure helpers.
memoiser = Memoiser()
