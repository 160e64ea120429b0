"""A journal in Redis Streams, so that several reviewd hosts (replicas) share the work.

Why Streams: a consumer group gives exactly what a shared work queue needs — each
entry goes to one consumer, stays in that consumer's pending list until acknowledged,
and can be claimed by another consumer when its owner stops touching it (a dead host).

Model (``PREFIX`` defaults to ``reviewd``):

* ``PREFIX:seen:PLUGIN:EVENT_ID`` — dedupe marker, ``SET NX`` with the retention as TTL.
  Every replica's hub receives every event; the first replica to set the marker journals it.
* ``PREFIX:stream:PLUGIN`` — one entry per unfinished delivery (fields ``id``, ``topic``,
  ``payload``, ``received``), consumer group ``reviewd``; one consumer per replica
  (``journal.consumer``, the host name by default, so a restarted replica finds its own
  pending entries again).
* ``PREFIX:entry:PLUGIN`` (event id → entry id), ``PREFIX:attempts:PLUGIN`` (attempts
  counted when a replica takes the delivery, so before its handler runs),
  ``PREFIX:error:PLUGIN`` — bookkeeping per unfinished delivery.
* ``PREFIX:dead:PLUGIN`` — dead letters (a plain stream), ``PREFIX:done:PLUGIN`` and
  ``PREFIX:claims:PLUGIN`` — counters; ``PREFIX:replicas`` — heartbeats
  (:mod:`reviewd.daemon.cluster`); ``PREFIX:lease:PLUGIN`` — pinned plugins
  (:mod:`reviewd.daemon.lease`).

The markers, the stream entries and the bookkeeping of one event are written by one Lua
script (:data:`~reviewd.daemon.journal.redis_scripts.RECORD`, one call for all its
plugins; the intake's batches go 64 calls to a round trip), so a crash can never leave
an event "seen" but not journaled.  Lanes are *fed* (``feeds_lanes``): one
:class:`~reviewd.daemon.journal.redis_feed.LaneFeed` thread per plugin pulls batches
with a blocking ``XREADGROUP`` and claims entries of dead replicas, counting one
attempt for the whole batch in one script call (``BEGIN``); each completion is
acknowledged by the worker that finished it at once, and that worker's next handler
waits for it (:mod:`~reviewd.daemon.journal.redis_acks`), so a kill -9 leaves at most
one finished-but-unacknowledged delivery per worker.  The calls made per event and per
delivery go out on raw connections (:mod:`~reviewd.daemon.journal.redis_raw`).  While
Redis cannot be reached the journal says so (:attr:`problem`, which ``/readyz`` shows;
:mod:`~reviewd.daemon.journal.redis_link`) and its writes raise, so that the intake
keeps the events the hub delivers in its bounded spool (:mod:`reviewd.daemon.spool`)
and writes them when Redis returns; it never falls back to a local journal.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import structlog

from reviewd.api.exception import redact, register_secret
from reviewd.daemon.journal.redis_acks import AckBatcher
from reviewd.daemon.journal.redis_link import RedisLink
from reviewd.daemon.journal.redis_raw import RawConnections
from reviewd.daemon.journal.redis_scripts import ACK, BEGIN, HAND_BACK, RECORD, TOUCH, UNBEGIN
from reviewd.daemon.journal.sqlite import DEAD, DONE, PENDING, Delivery, JournalError, _jsonable

log = structlog.get_logger("reviewd.journal.redis")

GROUP = "reviewd"
#: Events recorded per round trip (see record_batch).
RECORD_CHUNK = 64


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
    """The journal interface of :class:`SqliteJournal`, shared by replicas through Redis."""

    dispatch_local = False  # lanes get their work from the consumer group
    feeds_lanes = True  # ...through one LaneFeed thread per lane (see feed())

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "reviewd",
        consumer: str | None = None,
        retention: float = 7 * 86400.0,
        claim_idle: float = 60.0,
        batch: int = 200,
        block: float = 1.0,
        pinned: Iterable[str] = (),
        lease_ttl: float = 10.0,
        background: bool = True,
    ) -> None:
        import redis

        password = urllib.parse.urlsplit(url).password
        register_secret(password)
        self.path = display_url(url)
        self.prefix = prefix
        self.consumer = consumer or socket.gethostname()
        self.retention = max(1, int(retention))
        self.claim_idle = max(0.001, float(claim_idle))
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        self.batch = max(1, int(batch))
        self.block_ms = max(1, int(block * 1000))
        self.pinned = frozenset(pinned)
        self.lease_ttl = float(lease_ttl)
        self.redis_error = redis.RedisError
        self.connection_errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        try:
            # socket_timeout above the longest BLOCK, so a blocking read is never cut short.
            # Any: redis-py types every reply as bytes | str (and most as optional) even
            # with decode_responses=True, where they are str; its stubs cannot say that.
            self._r: Any = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=max(5.0, 2 * block + 1),
                socket_connect_timeout=2.0,
                health_check_interval=30,
            )
            self._r.ping()
        except redis.RedisError as exc:
            raise JournalError(
                f"cannot reach the Redis journal at {self.path}: {redact(str(exc))}"
            ) from exc
        self._record = self._r.register_script(RECORD)
        self._touch = self._r.register_script(TOUCH)
        self._hand_back = self._r.register_script(HAND_BACK)
        self._begin = self._r.register_script(BEGIN)
        self._unbegin = self._r.register_script(UNBEGIN)
        self._ack = self._r.register_script(ACK)
        self._scripts: list[Any] = [self._record, self._touch, self._hand_back, self._begin]
        self._scripts += [self._unbegin, self._ack]
        self._ack_keys: dict[str, tuple[str, ...]] = {}
        self.raw = RawConnections(self._r, self.load_scripts)
        self._groups: set[str] = set()
        #: (plugin, event id) -> stream entry id of the deliveries this replica took.
        self._held: dict[tuple[str, str], str] = {}
        #: (plugin, event id) -> attempt counted when this replica took the delivery, not
        #: yet claimed by a handler (see begin_attempt).
        self._begun: dict[tuple[str, str], int] = {}
        #: Per worker thread: the ticket of its last completion (see begin_attempt).
        self._local = threading.local()
        self._closed = threading.Event()
        self.acks = AckBatcher(self)
        self.link = RedisLink(self)
        self.feeds: dict[str, Any] = {}
        if background:
            self.acks.start()
            self.link.start()

    @property
    def client(self) -> Any:
        """The Redis client (leases and cluster heartbeats share its connection pool)."""
        return self._r

    @property
    def problem(self) -> str | None:
        """Why the journal cannot work right now (``/readyz`` says it), else None."""
        return self.link.problem

    # ------------------------------------------------------------------ keys
    def key(self, kind: str, plugin: str, *rest: str) -> str:
        return ":".join([self.prefix, kind, plugin, *rest])

    def ensure_group(self, plugin: str) -> str:
        stream = self.key("stream", plugin)
        if stream not in self._groups:
            try:
                self._r.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except self.redis_error as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._r.sadd(f"{self.prefix}:plugins", plugin)  # for the tools and status
            self._groups.add(stream)
        return stream

    def forget_groups(self) -> None:
        """After Redis came back (maybe empty, restarted without persistence): check again."""
        self._groups.clear()

    def plugins(self) -> list[str]:
        return sorted(self._r.smembers(f"{self.prefix}:plugins"))

    # ------------------------------------------------------------------ writing
    def record(self, event: Mapping[str, Any], plugins: Iterable[str]) -> list[str]:
        """Journal *event* for the *plugins* no replica has journaled it for yet.

        Raises :class:`JournalError` while Redis cannot be reached: the intake keeps the
        event in its bounded spool and tries again (never a local journal instead).
        """
        names = list(dict.fromkeys(plugins))
        if not names:
            return []
        payload = json.dumps(_jsonable(event), default=str, separators=(",", ":"))
        try:
            return self.write(payload, names)
        except self.connection_errors as exc:
            raise self._unreachable(exc) from exc

    def record_batch(self, entries: Sequence[Any]) -> list[list[str]]:
        """Journal the intake's batch (``Entry``: event id, topic, encoded payload,
        plugins); the plugins each event was new for.  One ``RECORD`` call per event,
        sent RECORD_CHUNK at a time, each chunk one round trip on a raw connection
        (:mod:`~reviewd.daemon.journal.redis_raw`): the chunks keep the intake's share
        of the interpreter short, so that workers waiting for a reply are not held up
        behind a whole batch being packed.
        Raises :class:`JournalError` while Redis cannot be reached (see :meth:`record`)."""
        flags: list[Any] = []
        try:
            for start in range(0, len(entries), RECORD_CHUNK):
                chunk = entries[start : start + RECORD_CHUNK]
                flags += self.raw.send(
                    [
                        self.record_command(e.payload, list(e.plugins), e.event_id, e.topic)
                        for e in chunk
                    ]
                )
        except self.connection_errors as exc:
            raise self._unreachable(exc) from exc
        return [
            [p for p, flag in zip(e.plugins, f, strict=True) if flag]
            for e, f in zip(entries, flags, strict=True)
        ]

    def _unreachable(self, exc: BaseException) -> JournalError:
        self.link.lost(exc)
        return JournalError(self.link.problem or f"journal: Redis unreachable at {self.path}")

    def write(self, payload: str, plugins: list[str]) -> list[str]:
        """One Lua call journaling the wire-form *payload* for *plugins*; the plugins it
        was new for (raises when Redis cannot be reached)."""
        event = json.loads(payload)
        command = self.record_command(
            payload, plugins, str(event["id"]), str(event.get("topic", ""))
        )
        keys = command[3 : 3 + command[2]]
        flags = self._record(keys=keys, args=command[3 + command[2] :])
        return [plugin for plugin, flag in zip(plugins, flags, strict=True) if flag]

    def record_command(
        self, payload: str, plugins: list[str], event_id: str, topic: str
    ) -> tuple[Any, ...]:
        """The ``RECORD`` script call for one event (by SHA)."""
        keys = []
        for plugin in plugins:
            keys += [
                self.key("seen", plugin, event_id),
                self.ensure_group(plugin),
                self.key("entry", plugin),
            ]
        args = [self.retention, event_id, topic, payload, repr(time.time())]
        return ("EVALSHA", self._record.sha, len(keys), *keys, *args)

    def touch(self, plugin: str, event_ids: Iterable[str]) -> list[str]:
        """Keep this replica's claim on deliveries it still holds (resets their idle time);
        return the event ids another replica claimed meanwhile."""
        wanted = list(event_ids) + self.acks.unacked_ids(plugin)
        if not wanted:
            return []
        entries = self._r.hmget(self.key("entry", plugin), wanted)
        by_entry = {e: i for i, e in zip(wanted, entries, strict=True) if e}
        if not by_entry:
            return []
        lost = self._touch(
            keys=[self.key("stream", plugin)], args=[GROUP, self.consumer, *by_entry]
        )
        return [by_entry[e] for e in lost or []]

    def begin_attempt(self, event_id: str, plugin: str, attempt: int | None = None) -> int:
        """Count an attempt *before* the handler runs: a replica that dies while handling
        it has spent one attempt, so an event that kills its process is dead-lettered
        after the retry budget instead of crash-looping the cluster.  *attempt* (1 for
        the first) is written as it is; without it the count goes up by one.

        A delivery's first attempt here was already counted when this replica took it
        (:meth:`fetch`, :meth:`claim`: one script call per batch), so this costs no round
        trip; a retry in place writes its count.  First, though, the calling worker's
        previous completion must be acknowledged in Redis: a worker never starts a
        handler while a delivery it finished could still be run again elsewhere, so a
        kill -9 leaves at most one finished-but-unacknowledged delivery per worker."""
        self._wait_for_own_ack(plugin)
        begun = self._begun.pop((plugin, event_id), None)
        if begun is not None and (attempt is None or attempt == begun):
            return begun
        key = self.key("attempts", plugin)
        if attempt is None:
            return int(self._r.hincrby(key, event_id, 1))
        self._r.hset(key, event_id, attempt)
        return attempt

    def _wait_for_own_ack(self, plugin: str) -> None:
        ticket = getattr(self._local, "ticket", 0)
        if not ticket or self.acks.written(ticket):
            return
        feed = self.feeds.get(plugin)

        def give_up() -> bool:
            return self.closed or (feed is not None and feed.stopping)

        if not self.acks.wait_written(ticket, give_up):
            raise JournalError(
                "stopping before the last finished delivery was acknowledged in Redis; "
                "the next one stays pending"
            )

    def entry_of(self, plugin: str, event_id: str) -> str | None:
        return self._r.hget(self.key("entry", plugin), event_id)

    def forget(self, pipe: Any, plugin: str, event_id: str, entry: str) -> None:
        stream = self.key("stream", plugin)
        pipe.xack(stream, GROUP, entry)
        pipe.xdel(stream, entry)
        pipe.hdel(self.key("entry", plugin), event_id)
        pipe.hdel(self.key("attempts", plugin), event_id)
        pipe.hdel(self.key("error", plugin), event_id)

    def ack_command(self, plugin: str, entries: Mapping[str, str]) -> tuple[Any, ...]:
        """The command acknowledging finished deliveries of one plugin (event id ->
        entry id): acknowledged, deleted, their bookkeeping dropped, counted done, in
        one script call (:mod:`~reviewd.daemon.journal.redis_acks` sends it)."""
        keys = self._ack_keys.get(plugin)
        if keys is None:
            kinds = ("stream", "entry", "attempts", "error", "done")
            keys = self._ack_keys[plugin] = tuple(self.key(kind, plugin) for kind in kinds)
        args: list[str] = [GROUP]
        for event_id, entry in entries.items():
            args += [event_id, entry]
        return ("EVALSHA", self._ack.sha, len(keys), *keys, *args)

    def load_scripts(self) -> None:
        """Load the scripts again (a restarted Redis forgot them)."""
        for script in self._scripts:
            script.sha = self._r.script_load(script.script)

    def held_entry(self, plugin: str, event_id: str) -> str | None:
        """The stream entry of a delivery this replica took (None: not known here)."""
        return self._held.get((plugin, event_id))

    def release_entry(self, plugin: str, event_id: str) -> None:
        self._held.pop((plugin, event_id), None)
        self._begun.pop((plugin, event_id), None)

    def mark_done(self, event_id: str, plugin: str) -> None:
        """Finished: acknowledged now, from the worker's thread, in one round trip with
        the other completions ready meanwhile (kept and retried while Redis is away)."""
        ticket = self.acks.done(plugin, event_id)
        self._local.ticket = ticket
        self.acks.write_through(ticket)
        self._wake(plugin)

    def unbegin(self, plugin: str, event_ids: Iterable[str]) -> int:
        """Deliveries this replica took but will not run (handed back, given up, no
        current subscriber): the attempt counted when it took them is taken back, for
        those it still owns.  Returns how many."""
        pairs: list[str] = []
        for event_id in event_ids:
            entry = self._held.get((plugin, event_id))
            if self._begun.pop((plugin, event_id), None) is not None and entry:
                pairs += [event_id, entry]
        if not pairs:
            return 0
        keys = [self.key("stream", plugin), self.key("attempts", plugin)]
        return int(self._unbegin(keys=keys, args=[GROUP, self.consumer, *pairs]))

    def _wake(self, plugin: str) -> None:
        feed = self.feeds.get(plugin)
        if feed is not None:
            feed.wake()

    def mark_failed(self, event_id: str, plugin: str, error: str) -> None:
        """A failed attempt; the attempt itself was counted by :meth:`begin_attempt`."""
        self._r.hset(self.key("error", plugin), event_id, error[:4000])

    def mark_dead(self, event_id: str, plugin: str, error: str) -> None:
        self.acks.flush()
        entry = self.entry_of(plugin, event_id)
        if entry is None:
            return
        stream = self.key("stream", plugin)
        found = self._r.xrange(stream, entry, entry)
        fields = (
            dict(found[0][1])
            if found
            else {"id": event_id, "topic": "", "payload": "{}", "received": repr(time.time())}
        )
        attempts = int(self._r.hget(self.key("attempts", plugin), event_id) or 0)
        if self._begun.pop((plugin, event_id), None) is not None:
            attempts -= 1  # counted when taken, but dead-lettered without running
        fields.update(attempts=str(max(1, attempts)), error=error[:4000], updated=repr(time.time()))
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(self.key("dead", plugin), fields)
        self.forget(pipe, plugin, event_id, entry)
        pipe.execute()
        self.release_entry(plugin, event_id)
        self._wake(plugin)

    def _dead_entries(self, event_id: str | None, plugin: str | None) -> Iterator[Any]:
        for name in [plugin] if plugin else self.plugins():
            for entry, fields in self._r.xrange(self.key("dead", name)):
                if event_id is None or fields.get("id") == event_id:
                    yield name, entry, fields

    def retry_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        count = 0
        for name, entry, fields in list(self._dead_entries(event_id, plugin)):
            stream = self.ensure_group(name)
            new_entry = self._r.xadd(
                stream, {k: fields[k] for k in ("id", "topic", "payload", "received")}
            )
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self.key("entry", name), fields["id"], new_entry)
            pipe.hdel(self.key("attempts", name), fields["id"])
            pipe.xdel(self.key("dead", name), entry)
            pipe.execute()
            count += 1
        return count

    def purge_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        count = 0
        for name, entry, _fields in list(self._dead_entries(event_id, plugin)):
            count += self._r.xdel(self.key("dead", name), entry)
        return count

    def prune(self, retention: float, now: float | None = None) -> int:
        """Nothing to do: done entries are deleted at once and dedupe markers expire."""
        return 0

    # ------------------------------------------------------------------ taking work
    def fetch(
        self, plugin: str, count: int, *, own: bool = False, block_ms: int | None = None
    ) -> list[Delivery]:
        """Take up to *count* deliveries for this replica: its own unfinished entries
        (``own``, after a restart) or new ones, waiting up to *block_ms* for them."""
        stream = self.ensure_group(plugin)
        response = self._r.xreadgroup(
            GROUP,
            self.consumer,
            {stream: "0" if own else ">"},
            count=count,
            block=None if own else block_ms,
        )
        return self._deliveries(plugin, _entries(response))

    def claim(self, plugin: str, count: int) -> list[Delivery]:
        """Take over entries other replicas stopped touching for ``claim_idle``."""
        stream = self.ensure_group(plugin)
        response = self._r.xautoclaim(
            stream, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        entries = [(e, f) for e, f in response[1] if f]
        deleted = response[2] if len(response) > 2 else []
        if deleted:  # entries deleted while pending (acked then XDEL raced): drop them
            self._r.xack(stream, GROUP, *deleted)
        if entries:
            self._r.incrby(self.key("claims", plugin), len(entries))
        return self._deliveries(plugin, entries)

    def _deliveries(
        self, plugin: str, entries: list[tuple[str, dict]], hold: bool = True
    ) -> list[Delivery]:
        """Stream entries as deliveries.  *hold*: this replica takes them, so one attempt
        each is counted now (one script call for the batch, before any handler runs;
        see :meth:`begin_attempt`); entries whose event moved on meanwhile are skipped."""
        seen: set[str] = set()
        unique = []
        for entry, fields in entries:
            if fields and fields.get("id") and fields["id"] not in seen:
                seen.add(fields["id"])
                unique.append((entry, fields))
        if not unique:
            return []
        ids = [f["id"] for _e, f in unique]
        out = []
        if not hold:
            pipe = self._r.pipeline(transaction=False)
            pipe.hmget(self.key("attempts", plugin), ids)
            pipe.hmget(self.key("error", plugin), ids)
            attempts, errors = pipe.execute()
            for (entry, fields), tries, error in zip(unique, attempts, errors, strict=True):
                out.append(self._delivery(plugin, entry, fields, PENDING, int(tries or 0), error))
            return out
        args: list[str] = []
        for entry, fields in unique:
            args += [fields["id"], entry]
        keys = [self.key(kind, plugin) for kind in ("entry", "attempts", "error")]
        counted = self._begin(keys=keys, args=args)
        for index, (entry, fields) in enumerate(unique):
            tries, error = int(counted[2 * index]), counted[2 * index + 1]
            if tries < 0:
                log.debug(
                    "a taken stream entry no longer stands for its event; skipped",
                    plugin=plugin,
                    event_id=fields["id"],
                    entry=entry,
                )
                continue
            self._held[(plugin, fields["id"])] = entry
            self._begun[(plugin, fields["id"])] = tries
            out.append(self._delivery(plugin, entry, fields, PENDING, tries - 1, error))
        return out

    def feed(self, lane: Any, resolve: Any) -> Any:
        """Start the thread that keeps *lane* supplied from its plugin's stream."""
        from reviewd.daemon.journal.redis_feed import LaneFeed

        feed = LaneFeed(self, lane, resolve)
        self.feeds[lane.plugin] = feed
        feed.start()
        return feed

    # ------------------------------------------------------------------ reading
    def _delivery(
        self,
        plugin: str,
        entry: str,
        fields: Mapping[str, str],
        state: str = PENDING,
        attempts: int | None = None,
        error: str | None = None,
    ) -> Delivery:
        event_id = fields.get("id", "")
        if state == DEAD:
            attempts, error = int(fields.get("attempts", 0)), fields.get("error")
        elif attempts is None:
            attempts = int(self._r.hget(self.key("attempts", plugin), event_id) or 0)
            error = self._r.hget(self.key("error", plugin), event_id)
        received = float(fields.get("received", 0) or 0)
        payload = fields.get("payload") or "{}"
        return Delivery(
            entry,
            event_id,
            fields.get("topic", ""),
            plugin,
            state,
            attempts,
            error,
            received,
            float(fields.get("updated", received) or received),
            json.loads(payload),
            len(payload),
        )

    def pending(self, plugin: str | None = None, limit: int | None = None) -> list[Delivery]:
        """Unfinished deliveries, oldest first (a read-only view: ``reviewd journal list
        --pending``; replicas take their work with :meth:`fetch` and :meth:`claim`)."""
        names = [plugin] if plugin else self.plugins()
        out: list[Delivery] = []
        for name in names:
            count = None if limit is None else max(0, limit - len(out))
            if count == 0:
                break
            items = self._r.xrange(self.key("stream", name), count=count)
            out.extend(self._deliveries(name, items, hold=False))
        return out

    def dead_letters(self, plugin: str | None = None) -> list[Delivery]:
        return [
            self._delivery(name, entry, fields, DEAD)
            for name, entry, fields in self._dead_entries(None, plugin)
        ]

    def deliveries(self, event_id: str) -> list[Delivery]:
        out = []
        for plugin in self.plugins():
            entry = self.entry_of(plugin, event_id)
            if entry:
                found = self._r.xrange(self.key("stream", plugin), entry, entry)
                if found:
                    out.append(self._delivery(plugin, entry, found[0][1]))
            out.extend(
                self._delivery(plugin, e, f, DEAD)
                for _name, e, f in self._dead_entries(event_id, plugin)
            )
        return out

    def counts(self) -> dict[str, int]:
        counts = {PENDING: 0, DONE: 0, DEAD: 0}
        for plugin in self.plugins():
            pipe = self._r.pipeline(transaction=False)
            pipe.xlen(self.key("stream", plugin))
            pipe.xlen(self.key("dead", plugin))
            pipe.get(self.key("done", plugin))
            pending, dead, done = pipe.execute()
            counts[PENDING] += pending
            counts[DEAD] += dead
            counts[DONE] += int(done or 0)
        return counts

    def size_bytes(self) -> int:
        total = 0
        for plugin in self.plugins():
            for kind in ("stream", "dead", "entry"):
                try:
                    total += int(self._r.memory_usage(self.key(kind, plugin)) or 0)
                except self.redis_error:
                    pass
        return total

    def hand_back(self) -> int:
        """Return every entry this replica still holds to the stream (a clean stop:
        the other replicas take them at once rather than after ``claim_idle``)."""
        moved = 0
        for plugin in self.plugins():
            stream = self.key("stream", plugin)
            held = self._r.xpending_range(
                stream, GROUP, "-", "+", 10_000, consumername=self.consumer
            )
            ids = [e["message_id"] for e in held]
            for start in range(0, len(ids), 500):
                moved += int(
                    self._hand_back(
                        keys=[stream, self.key("entry", plugin)],
                        args=[GROUP, self.consumer, *ids[start : start + 500]],
                    )
                )
        return moved

    def undo_unstarted(self) -> int:
        """Deliveries this replica took but never started (a clean stop): the attempt
        counted when it took them is taken back, so that a rolling update costs no
        delivery any of its retry budget."""
        not_started: dict[str, list[str]] = {}
        for plugin, event_id in list(self._begun):
            not_started.setdefault(plugin, []).append(event_id)
        return sum(self.unbegin(plugin, ids) for plugin, ids in not_started.items())

    def _leave(self) -> None:
        """A clean stop: this consumer (now holding nothing) leaves its groups and the
        list of replicas, so that pods that come and go leave no trace behind."""
        try:
            self.link.stop()
            for plugin in self.plugins():
                stream = self.key("stream", plugin)
                held = self._r.xpending_range(
                    stream, GROUP, "-", "+", 1, consumername=self.consumer
                )
                if not held:
                    self._r.xgroup_delconsumer(stream, GROUP, self.consumer)
            self._r.hdel(f"{self.prefix}:replicas", self.consumer)
        except self.redis_error as exc:
            log.debug("leaving the consumer groups failed", error=redact(str(exc)))

    def close(self) -> None:
        """Stop the feeds, write the acknowledgements still owed, hand back what this
        replica held but did not finish (when Redis answers), close."""
        self._closed.set()
        for feed in list(self.feeds.values()):
            feed.stop()
        self.acks.stop()
        if self.acks.backlog() == 0:
            try:
                self.undo_unstarted()
            except self.redis_error as exc:
                log.debug("undoing counted attempts failed", error=redact(str(exc)))
        if self.feeds and self.acks.backlog() == 0:
            try:
                moved = self.hand_back()
            except self.redis_error as exc:
                log.warning(
                    "handing back unfinished deliveries failed; the other replicas "
                    "take them after journal.claim_idle",
                    error=redact(str(exc)),
                )
            else:
                if moved:
                    log.info("unfinished deliveries handed back to the other replicas", count=moved)
                self._leave()
        self.link.stop()
        self.raw.close()
        self._r.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


def _entries(response: Any) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    if isinstance(response, dict):  # RESP3 shape
        response = list(response.items())
    for _stream, items in response or []:
        out.extend((entry, fields) for entry, fields in items)
    return out
