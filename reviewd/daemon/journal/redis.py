"""A journal in Redis Streams, so that several reviewd hosts share the work.

Why Streams: a consumer group gives exactly what a shared work queue needs — each
entry goes to one consumer, stays in that consumer's pending list until acknowledged,
and can be claimed by another consumer when its owner stops touching it (a dead host).

Model (``PREFIX`` defaults to ``reviewd``):

* ``PREFIX:seen:PLUGIN:EVENT_ID`` — dedupe marker, ``SET NX`` with the retention as TTL.
  Every host's hub receives every event; the first host to set the marker journals it.
* ``PREFIX:stream:PLUGIN`` — one entry per unfinished delivery (fields ``id``, ``topic``,
  ``payload``, ``received``), consumer group ``reviewd``; one consumer per host
  (``journal.consumer``, the host name by default, so a restarted host finds its own
  pending entries again).
* ``PREFIX:entry:PLUGIN`` (event id → entry id), ``PREFIX:attempts:PLUGIN``,
  ``PREFIX:error:PLUGIN`` — bookkeeping per unfinished delivery.
* ``PREFIX:dead:PLUGIN`` — dead letters (a plain stream), ``PREFIX:done:PLUGIN`` — a counter.

The marker, the stream entry and the bookkeeping are written by one Lua script, so a
crash can never leave an event "seen" but not journaled.  Lanes *pull* from the group
(``dispatch_local = False``): the host that journals an event is not necessarily the one
that handles it.  Per-plugin ordering holds per host only.  A host keeps its claimed
entries alive with :meth:`touch`; entries idle longer than ``claim_idle`` (their host
died) are claimed by whichever host asks next.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from reviewd.api.exception import register_secret
from reviewd.daemon.journal.sqlite import DEAD, DONE, PENDING, Delivery, JournalError, _jsonable

GROUP = "reviewd"

_RECORD = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'topic', ARGV[3],
                           'payload', ARGV[4], 'received', ARGV[5])
  redis.call('HSET', KEYS[3], ARGV[2], entry)
  redis.call('SADD', KEYS[4], ARGV[6])
  return entry
end
return false
"""


def display_url(url: str) -> str:
    """The URL without its password (for status pages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


class RedisJournal:
    """The journal interface of :class:`SqliteJournal`, shared by hosts through Redis."""

    dispatch_local = False  # lanes pull their work from the consumer group

    def __init__(self, url: str, *, prefix: str = "reviewd", consumer: str | None = None,
                 retention: float = 7 * 86400.0, claim_idle: float = 60.0) -> None:
        import redis

        password = urllib.parse.urlsplit(url).password
        register_secret(password)
        self.path = display_url(url)
        self.prefix = prefix
        self.consumer = consumer or socket.gethostname()
        self.retention = max(1, int(retention))
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        try:
            # Any: redis-py types every reply as bytes | str (and most as optional) even
            # with decode_responses=True, where they are str; its stubs cannot say that.
            self._r: Any = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30,
                                           health_check_interval=30)
            self._r.ping()
        except redis.RedisError as exc:
            raise JournalError(f"cannot reach the Redis journal at {self.path}: {exc}") from exc
        self._record = self._r.register_script(_RECORD)
        self._groups: set[str] = set()
        self._redis_error = redis.RedisError

    # ------------------------------------------------------------------ keys
    def _key(self, kind: str, plugin: str, *rest: str) -> str:
        return ":".join([self.prefix, kind, plugin, *rest])

    def _ensure_group(self, plugin: str) -> str:
        stream = self._key("stream", plugin)
        if stream not in self._groups:
            try:
                self._r.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except self._redis_error as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(stream)
        return stream

    def plugins(self) -> list[str]:
        return sorted(self._r.smembers(f"{self.prefix}:plugins"))

    # ------------------------------------------------------------------ writing
    def record(self, event: Mapping[str, Any], plugins: Iterable[str]) -> list[str]:
        """Journal *event* for the *plugins* no host has journaled it for yet."""
        payload = json.dumps(_jsonable(event), default=str, separators=(",", ":"))
        event_id = str(event["id"])
        topic = str(event.get("topic", ""))
        new = []
        for plugin in dict.fromkeys(plugins):
            stream = self._ensure_group(plugin)
            keys = [self._key("seen", plugin, event_id), stream, self._key("entry", plugin),
                    f"{self.prefix}:plugins"]
            args: list[Any] = [self.retention, event_id, topic, payload, repr(time.time()), plugin]
            if self._record(keys=keys, args=args):
                new.append(plugin)
        return new

    def touch(self, plugin: str, event_ids: Iterable[str]) -> None:
        """Keep this host's claim on deliveries it still holds (resets their idle time)."""
        ids = [e for e in self._r.hmget(self._key("entry", plugin), list(event_ids)) if e]
        if ids:
            self._r.xclaim(self._key("stream", plugin), GROUP, self.consumer, 0, ids,
                           justid=True)

    def _entry_id(self, plugin: str, event_id: str) -> str | None:
        return self._r.hget(self._key("entry", plugin), event_id)

    def _forget(self, pipe: Any, plugin: str, event_id: str, entry: str) -> None:
        stream = self._key("stream", plugin)
        pipe.xack(stream, GROUP, entry)
        pipe.xdel(stream, entry)
        pipe.hdel(self._key("entry", plugin), event_id)
        pipe.hdel(self._key("attempts", plugin), event_id)
        pipe.hdel(self._key("error", plugin), event_id)

    def mark_done(self, event_id: str, plugin: str) -> None:
        entry = self._entry_id(plugin, event_id)
        if entry is None:
            return
        pipe = self._r.pipeline(transaction=True)
        self._forget(pipe, plugin, event_id, entry)
        pipe.incr(self._key("done", plugin))
        pipe.execute()

    def mark_failed(self, event_id: str, plugin: str, error: str) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(self._key("attempts", plugin), event_id, 1)
        pipe.hset(self._key("error", plugin), event_id, error[:4000])
        pipe.execute()

    def mark_dead(self, event_id: str, plugin: str, error: str) -> None:
        entry = self._entry_id(plugin, event_id)
        if entry is None:
            return
        stream = self._key("stream", plugin)
        found = self._r.xrange(stream, entry, entry)
        fields = dict(found[0][1]) if found else {"id": event_id, "topic": "", "payload": "{}",
                                                  "received": repr(time.time())}
        attempts = int(self._r.hget(self._key("attempts", plugin), event_id) or 0) + 1
        fields.update(attempts=str(attempts), error=error[:4000], updated=repr(time.time()))
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(self._key("dead", plugin), fields)
        self._forget(pipe, plugin, event_id, entry)
        pipe.execute()

    def _dead_entries(self, event_id: str | None, plugin: str | None) -> Iterator[Any]:
        for name in [plugin] if plugin else self.plugins():
            for entry, fields in self._r.xrange(self._key("dead", name)):
                if event_id is None or fields.get("id") == event_id:
                    yield name, entry, fields

    def retry_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        count = 0
        for name, entry, fields in list(self._dead_entries(event_id, plugin)):
            stream = self._ensure_group(name)
            new_entry = self._r.xadd(stream, {k: fields[k] for k in
                                              ("id", "topic", "payload", "received")})
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self._key("entry", name), fields["id"], new_entry)
            pipe.xdel(self._key("dead", name), entry)
            pipe.execute()
            count += 1
        return count

    def purge_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        count = 0
        for name, entry, _fields in list(self._dead_entries(event_id, plugin)):
            count += self._r.xdel(self._key("dead", name), entry)
        return count

    def prune(self, retention: float, now: float | None = None) -> int:
        """Nothing to do: done entries are deleted at once and dedupe markers expire."""
        return 0

    # ------------------------------------------------------------------ reading
    def _delivery(self, plugin: str, entry: str, fields: Mapping[str, str],
                  state: str = PENDING) -> Delivery:
        event_id = fields.get("id", "")
        if state == PENDING:
            attempts = int(self._r.hget(self._key("attempts", plugin), event_id) or 0)
            error = self._r.hget(self._key("error", plugin), event_id)
        else:
            attempts, error = int(fields.get("attempts", 0)), fields.get("error")
        received = float(fields.get("received", 0) or 0)
        return Delivery(entry, event_id, fields.get("topic", ""), plugin, state, attempts, error,
                        received, float(fields.get("updated", received) or received),
                        json.loads(fields.get("payload") or "{}"))

    def pending(self, plugin: str | None = None, limit: int | None = None) -> list[Delivery]:
        """This host's share of unfinished deliveries: its own pending entries, entries
        whose host stopped touching them, then new ones."""
        if plugin is None:
            out = []
            for name in self.plugins():
                out.extend(self.pending(name, limit))
            return out
        stream = self._ensure_group(plugin)
        count = limit or 1000
        entries: list[tuple[str, dict]] = []
        own = self._r.xreadgroup(GROUP, self.consumer, {stream: "0"}, count=count)
        entries.extend(_entries(own))
        if len(entries) < count:
            claimed = self._r.xautoclaim(stream, GROUP, self.consumer, self.claim_idle_ms,
                                         start_id="0-0", count=count - len(entries))
            entries.extend((e, f) for e, f in claimed[1] if f)
        if len(entries) < count:
            fresh = self._r.xreadgroup(GROUP, self.consumer, {stream: ">"},
                                       count=count - len(entries))
            entries.extend(_entries(fresh))
        seen: set[str] = set()
        out = []
        for entry, fields in entries:
            if not fields or fields.get("id") in seen:
                continue
            seen.add(fields["id"])
            out.append(self._delivery(plugin, entry, fields))
        return out[:count]

    def dead_letters(self, plugin: str | None = None) -> list[Delivery]:
        return [self._delivery(name, entry, fields, DEAD)
                for name, entry, fields in self._dead_entries(None, plugin)]

    def deliveries(self, event_id: str) -> list[Delivery]:
        out = []
        for plugin in self.plugins():
            entry = self._entry_id(plugin, event_id)
            if entry:
                found = self._r.xrange(self._key("stream", plugin), entry, entry)
                if found:
                    out.append(self._delivery(plugin, entry, found[0][1]))
            out.extend(self._delivery(plugin, e, f, DEAD)
                       for _name, e, f in self._dead_entries(event_id, plugin))
        return out

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, DONE: 0, DEAD: 0}
        for plugin in self.plugins():
            counts[PENDING] += self._r.xlen(self._key("stream", plugin))
            counts[DEAD] += self._r.xlen(self._key("dead", plugin))
            counts[DONE] += int(self._r.get(self._key("done", plugin)) or 0)
        return counts

    def size_bytes(self) -> int:
        total = 0
        for plugin in self.plugins():
            for kind in ("stream", "dead", "entry"):
                try:
                    total += int(self._r.memory_usage(self._key(kind, plugin)) or 0)
                except self._redis_error:
                    pass
        return total

    def close(self) -> None:
        self._r.close()


def _entries(response: Any) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for _stream, items in response or []:
        out.extend((entry, fields) for entry, fields in items)
    return out
