"""Component data for the ``ftrack.server`` location: storage, signed URLs, HTTP routes.

The official client moves bytes to and from ``ftrack.server`` over plain HTTP, not
through ``/api``: it asks ``get_upload_metadata`` for a URL and headers and PUTs the
file there; it reads ``{server}/component/get?id=…&username=…&apiKey=…`` and removes
with ``/component/remove``; thumbnails come from ``/component/thumbnail``.  This
module stores each component's bytes as one file named by the component id under the
data folder, and serves those routes.

Upload and thumbnail URLs carry an HMAC signature (as a real server's pre-signed
storage URLs do) instead of credentials, so they can be handed to a browser or a
review tool without leaking the API key; download and remove need the API user and
key, like a real server.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from reviewd.devserver.server import DevServer

log = logging.getLogger("reviewd.devserver.files")

# Component ids are UUIDs; anything else is refused before it can name a path.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
URL_LIFETIME = 3600.0
CHUNK = 256 * 1024
MAX_UPLOAD = 8 * 1024**3  # a development server, not a media store


class FileStoreError(ValueError):
    """A component id or signature that cannot be used."""


class FileStore:
    """Bytes of components in the server location, one file per component id.

    *root*: the folder to keep them in; ``None`` makes a temporary folder that is
    removed by :meth:`close` (an in-memory server keeps no files either).
    """

    def __init__(self, root: str | None, base_url: Callable[[], str]) -> None:
        self._temporary = root is None
        self.root = root or tempfile.mkdtemp(prefix="reviewd-devserver-files-")
        os.makedirs(self.root, exist_ok=True)
        self.base_url = base_url
        self._secret = secrets.token_bytes(32)

    # ------------------------------------------------------------------ storage
    def path(self, component_id: str) -> str:
        if not isinstance(component_id, str) or not _SAFE_ID.match(component_id):
            raise FileStoreError(f"{component_id!r} is not a component id")
        return os.path.join(self.root, component_id)

    def exists(self, component_id: str) -> bool:
        return os.path.isfile(self.path(component_id))

    def copy(self, source_id: str, target_id: str) -> None:
        shutil.copyfile(self.path(source_id), self.path(target_id))

    def remove(self, component_id: str) -> bool:
        try:
            os.remove(self.path(component_id))
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ signed URLs
    def signature(self, purpose: str, component_id: str, expires: int) -> str:
        message = f"{purpose}:{component_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_url(self, purpose: str, component_id: str, **extra: Any) -> str:
        """A URL for *purpose* (``upload``/``thumbnail``) valid for an hour."""
        expires = int(time.time() + URL_LIFETIME)
        query = {"expires": expires, "signature": self.signature(purpose, component_id, expires)}
        query.update({k: v for k, v in extra.items() if v is not None})
        route = {"upload": "devserver/upload", "thumbnail": "component/thumbnail"}[purpose]
        return (
            f"{self.base_url()}/{route}/{urllib.parse.quote(component_id)}?"
            + urllib.parse.urlencode(query)
        )

    def check_signature(self, purpose: str, component_id: str, query: Any) -> None:
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            raise FileStoreError("missing or malformed expiry") from None
        given = str(query.get("signature", ""))
        expected = self.signature(purpose, component_id, expires)
        if not hmac.compare_digest(given, expected):
            raise FileStoreError("bad signature")
        if expires < time.time():
            raise FileStoreError("the URL has expired")

    def upload_metadata(self, component_id: str, file_name: str) -> dict:
        """What ``get_upload_metadata`` answers: where to PUT, with which headers."""
        self.path(component_id)
        return {
            "url": self.signed_url("upload", component_id),
            "headers": {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{file_name}"',
            },
        }


# ---------------------------------------------------------------------- HTTP routes
def add_routes(app: web.Application, server: DevServer) -> None:
    """Serve component data for the server location and the widget pages."""

    def files() -> FileStore:
        assert server.files is not None
        return server.files

    def authenticated(request: web.Request) -> bool:
        user = request.query.get("username") or request.headers.get("ftrack-user", "")
        key = request.query.get("apiKey") or request.headers.get("ftrack-api-key", "")
        assert server.store is not None, "files are served only while the store is open"
        return server.store.authenticate(user, key)

    def component_path(component_id: str) -> str:
        try:
            return files().path(component_id)
        except FileStoreError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None

    async def upload(request: web.Request) -> web.Response:
        component_id = request.match_info["component_id"]
        path = component_path(component_id)
        try:
            files().check_signature("upload", component_id, request.query)
        except FileStoreError as exc:
            raise web.HTTPForbidden(text=f"upload refused: {exc}\n") from None
        if (request.content_length or 0) > MAX_UPLOAD:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_UPLOAD, actual_size=request.content_length or 0
            )
        partial = f"{path}.{secrets.token_hex(4)}.part"
        size = 0
        try:
            with open(partial, "wb") as handle:
                async for chunk in request.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > MAX_UPLOAD:  # a body longer than it said: keep the old bytes
                        raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD, actual_size=size)
                    handle.write(chunk)
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        log.info("stored %d bytes for component %s", size, component_id)
        return web.Response(status=200, text="")

    async def download(request: web.Request) -> web.StreamResponse:
        if not authenticated(request):
            raise web.HTTPUnauthorized(text="invalid username or apiKey\n")
        path = component_path(request.query.get("id", ""))
        if not os.path.isfile(path):
            raise web.HTTPNotFound(text="no data for this component\n")
        return web.FileResponse(path)

    async def remove(request: web.Request) -> web.Response:
        if not authenticated(request):
            raise web.HTTPUnauthorized(text="invalid username or apiKey\n")
        component_path(request.query.get("id", ""))
        files().remove(request.query.get("id", ""))
        return web.Response(text="")

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        component_id = request.match_info.get("component_id") or request.query.get("id", "")
        path = component_path(component_id)
        if "signature" in request.query:
            try:
                files().check_signature("thumbnail", component_id, request.query)
            except FileStoreError as exc:
                raise web.HTTPForbidden(text=f"thumbnail refused: {exc}\n") from None
        elif not authenticated(request):
            raise web.HTTPUnauthorized(text="invalid username or apiKey\n")
        if not os.path.isfile(path):
            raise web.HTTPNotFound(text="no thumbnail data\n")
        # No resizing: the stored image is served as uploaded, whatever ``size`` asks.
        return web.FileResponse(path)

    async def widget(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        entity_type = request.query.get("entityType", "")
        entity_id = request.query.get("entityId", "")
        try:
            files().check_signature("widget", f"{name}:{entity_type}:{entity_id}", request.query)
        except FileStoreError as exc:
            raise web.HTTPForbidden(text=f"widget refused: {exc}\n") from None
        summary = server.describe_entity(entity_type, entity_id) if entity_type else ""
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>reviewd devserver: {html.escape(name)}</title></head>"
            f"<body class='theme-{html.escape(request.query.get('theme', 'dark'))}'>"
            f"<h1>{html.escape(name)} widget</h1>"
            "<p>This is the embedded development server's stand-in for an ftrack web widget.</p>"
            f"<pre>{html.escape(summary)}</pre></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    app.router.add_put("/devserver/upload/{component_id}", upload)
    app.router.add_get("/component/get", download)
    app.router.add_get("/component/remove", remove)
    app.router.add_get("/component/thumbnail", thumbnail)
    app.router.add_get("/component/thumbnail/{component_id}", thumbnail)
    app.router.add_get("/devserver/widget/{name}", widget)


def widget_url(
    store: FileStore, name: str, entity_type: str | None, entity_id: str | None, theme: str | None
) -> str:
    """A signed URL of the server's own page standing in for web widget *name*."""
    expires = int(time.time() + URL_LIFETIME)
    subject = f"{name}:{entity_type or ''}:{entity_id or ''}"
    query = {
        "entityType": entity_type or "",
        "entityId": entity_id or "",
        "theme": theme or "dark",
        "expires": expires,
        "signature": store.signature("widget", subject, expires),
    }
    return (
        f"{store.base_url()}/devserver/widget/{urllib.parse.quote(name)}?"
        + urllib.parse.urlencode(query)
    )
