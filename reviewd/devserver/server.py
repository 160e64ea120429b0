"""``DevServer``: the embedded ftrack-compatible server, runnable in-process or standalone.

aiohttp runs on its own thread and event loop, so tests and the CLI use it the same way:
``with DevServer() as server: ...``.  Batches run on one dedicated worker thread (one
SQLite writer, atomic batches, no event-loop stalls); after each batch that changed
something, one ``ftrack.update`` event goes to the event server, when it is installed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import threading
from typing import Any

from aiohttp import web

from reviewd.devserver.app import build_app
from reviewd.devserver.errors import ApiError, register_secret
from reviewd.devserver.files import FileStore
from reviewd.devserver.files import add_routes as add_file_routes
from reviewd.devserver.operations import BatchExecutor
from reviewd.devserver.schema import build_model, load_schemas
from reviewd.devserver.seed import DEFAULT_USER, demo_operations, seed_id
from reviewd.devserver.store import Store
from reviewd.devserver.updates import build_update_event

log = logging.getLogger("reviewd.devserver")

SEEDS = ("demo", "empty")


def _event_server_class() -> Any:
    """The socket.io event server, when that part of the package is present."""
    try:
        from reviewd.devserver.events import EventServer
    except ImportError:  # pragma: no cover - only while the event part is missing
        return None
    return EventServer


class DevServer:
    """An ftrack-compatible server on ``host:port`` (``port=0``: an ephemeral port).

    *data*: SQLite file to keep data across restarts (default: in memory).
    *seed*: ``"demo"`` or ``"empty"``, applied once to a fresh store.
    *schema*: a schema list JSON file to serve instead of the built-in one.
    *api_user*/*api_key*: credentials to accept (default: ``admin`` with a random key,
    or the ones already stored in *data*).
    """

    def __init__(
        self,
        data: str | None = None,
        seed: str = "demo",
        schema: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_user: str | None = None,
        api_key: str | None = None,
        simulate: float | None = None,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 25.0,
    ) -> None:
        if seed not in SEEDS:
            raise ValueError(f"unknown seed {seed!r}; choose one of {', '.join(SEEDS)}")
        self.data = data
        self.seed = seed
        self.schema_path = schema
        self.host = host
        self.port = port
        self.api_user = api_user
        self.api_key = api_key
        self.simulate = simulate
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.action_counts: collections.Counter = collections.Counter()
        self.batches: collections.deque = collections.deque(maxlen=200)
        self.events: Any = None
        self.store: Store | None = None
        self.executor: BatchExecutor | None = None
        self.files: FileStore | None = None
        self.simulator: Any = None
        self._requested_port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._lifecycle = threading.Lock()
        self._counts_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:  # never shows the API key
        state = "running" if self.running else "stopped"
        return f"<DevServer {self.url} user={self.api_user!r} {state}>"

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> DevServer:
        """Open the store, seed it if new, and start serving; returns when accepting."""
        with self._lifecycle:
            if self.running:
                return self
            schemas = load_schemas(self.schema_path)
            model = build_model(schemas)
            self.store = Store(model, self.data)
            self.executor = BatchExecutor(model, self.store, schemas)
            # Component data lives beside the SQLite file, or in a temporary folder.
            self.files = FileStore(f"{self.data}.files" if self.data else None, lambda: self.url)
            self.executor.files = self.files
            self.executor.queries.files = self.files
            self._prepare_store()
            self._worker = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="reviewd-devserver-store"
            )
            self._ready.clear()
            self._startup_error = None
            self.port = self._requested_port
            self._thread = threading.Thread(
                target=self._serve, name="reviewd-devserver", daemon=True
            )
            self._thread.start()
            self._ready.wait()
            if self._startup_error is not None:
                self._thread.join()
                self._thread = None
                self._close_store()
                raise self._startup_error
            if self.simulate:
                from reviewd.devserver.simulate import Simulator

                self.simulator = Simulator(self, self.simulate)
                self.simulator.start()
            log.info("devserver listening on %s as user %s", self.url, self.api_user)
            return self

    def stop(self) -> None:
        """Stop serving and close the store; safe to call twice."""
        with self._lifecycle:
            if self.simulator is not None:
                self.simulator.stop()
                self.simulator = None
            if self._thread is not None:
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(loop.stop)
                self._thread.join(timeout=30)
                self._thread = None
            if self._worker is not None:
                self._worker.shutdown(wait=True)
                self._worker = None
            self._close_store()

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.files is not None:
            self.files.close()
            self.files = None

    def _prepare_store(self) -> None:
        store, executor = self.store, self.executor
        assert store is not None and executor is not None
        user = self.api_user or store.setting("api_user") or DEFAULT_USER
        if store.setting("seeded") is None:
            if self.seed == "demo":
                operations = demo_operations(store.model, user)
            else:
                operations = [_user_operation(user)]
            executor.execute(operations, user, lenient=True)
            store.set_setting("seeded", self.seed)
        elif executor.user_id(user) is None and store.model.get("User") is not None:
            executor.execute([_user_operation(user)], user, lenient=True)
        if self.api_key:
            store.set_api_key(user, self.api_key)
        self.api_key = store.api_key_of(user) or store.set_api_key(user)
        store.set_setting("api_user", user)
        self.api_user = user
        register_secret(self.api_key)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = None
        try:
            assert self.store is not None, "start() opens the store before serving"
            app = build_app(self)
            add_file_routes(app, self)
            event_server_class = _event_server_class()
            if event_server_class is not None:
                self.events = event_server_class(
                    self.store.authenticate,
                    heartbeat_interval=self.heartbeat_interval,
                    heartbeat_timeout=self.heartbeat_timeout,
                )
                self.events.add_routes(app)
                assert self.executor is not None, "start() creates the executor before serving"
                self.events.user_lookup = self.executor.user_id
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self._requested_port)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as exc:  # surfaced by start() in the caller's thread
            self._startup_error = exc
            if runner is not None:
                loop.run_until_complete(runner.cleanup())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    # ------------------------------------------------------------------ batches
    def _execute(self, batch: list, user: str) -> tuple[list, dict | None]:
        """Run *batch* (worker thread); returns results and the update event, if any."""
        with self._counts_lock:
            for operation in batch:
                action = operation.get("action") if isinstance(operation, dict) else None
                self.action_counts[str(action)] += 1
            self.batches.append(batch)
        assert self.executor is not None, "batches run only while the server is started"
        results, changes = self.executor.execute(batch, user)
        event = None
        if changes:
            user_id = self.executor.user_id(user)
            source_id = getattr(self.events, "source_id", None) or "reviewd-devserver"
            event = build_update_event(changes, user, user_id, source_id)
        return results, event

    def _execute_to_text(self, batch: list, user: str) -> tuple[str, dict | None]:
        results, event = self._execute(batch, user)
        return json.dumps(results, check_circular=False), event

    async def run_batch_async(self, batch: list, user: str) -> str:
        """The ``/api`` path: run on the store worker, publish, return the JSON reply."""
        loop = asyncio.get_running_loop()
        text, event = await loop.run_in_executor(self._worker, self._execute_to_text, batch, user)
        if event is not None:
            await self._publish(event)
        return text

    async def _publish(self, event: dict) -> None:
        if self.events is None:
            return
        try:
            await self.events.publish(event)
        except Exception:  # a broken event route must not fail the committed batch
            log.exception("could not publish ftrack.update event %s", event.get("id"))

    def execute_batch(self, operations: list[dict], user: str) -> list[dict]:
        """Run *operations* exactly as ``POST /api`` would, from any thread.

        Returns the results list; raises :class:`~reviewd.devserver.errors.ApiError`
        (with ``.to_wire()`` giving the error object) when the batch is refused.
        """
        if self._worker is None or self._loop is None:
            raise RuntimeError("the DevServer is not running")
        if not isinstance(operations, list):
            raise ApiError("InvalidRequestError", "operations must be a list")
        results, event = self._worker.submit(self._execute, operations, user).result()
        if event is not None:
            coroutine = self._publish(event)
            if threading.current_thread() is self._thread:
                self._loop.create_task(coroutine)
            else:
                asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)
        return results

    # ------------------------------------------------------------------ files
    def _read_row(self, entity_type_name: str, entity_id: str) -> dict | None:
        assert self.store is not None, "rows are read only while the store is open"
        entity_type = self.store.model.get(entity_type_name)
        if entity_type is None:
            return None
        return self.store.get_row(entity_type, [entity_id])

    def describe_entity(self, entity_type_name: str, entity_id: str) -> str:
        """A few lines about an entity for the widget page (no secrets: plain attributes)."""
        row = self._read_row(entity_type_name, entity_id)
        if row is None:
            return f"{entity_type_name} {entity_id}: not found"
        shown = {k: v for k, v in row.items() if k in ("name", "id", "__type__", "description")}
        return "\n".join(f"{key}: {value}" for key, value in shown.items())

    # ------------------------------------------------------------------ events
    @property
    def faults(self) -> Any:
        if self.events is None:
            raise RuntimeError("the event server part (reviewd.devserver.events) is not available")
        return self.events.faults

    def emit(
        self,
        topic: str,
        data: dict | None = None,
        target: str = "",
        source: dict | None = None,
        wait_reply: float | None = None,
        source_user: str | None = None,
    ) -> dict | None:
        """Publish a server-originated event; with *wait_reply*, return the first reply.

        *source_user* sends it as that user (``source.user`` with username and id).
        """
        if self.events is None or self._loop is None:
            raise RuntimeError("the event server is not available")
        if source_user is not None:
            source = {**(source or {}), "user": self.events.source_user(source_user)}
        future = asyncio.run_coroutine_threadsafe(
            self.events.emit(topic, data, target=target, source=source, wait_reply=wait_reply),
            self._loop,
        )
        return future.result(timeout=(wait_reply or 0) + 30)


def _user_operation(username: str) -> dict:
    user_id = seed_id("User", username)
    return {
        "action": "create",
        "entity_type": "User",
        "entity_key": [user_id],
        "entity_data": {
            "__entity_type__": "User",
            "id": user_id,
            "username": username,
            "is_active": True,
        },
    }
