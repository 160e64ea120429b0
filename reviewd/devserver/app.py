"""The HTTP side of the embedded server: ``POST /api`` as a real ftrack server answers it.

The handler only checks credentials and the shape of the body; the batch itself runs on
the server's single store worker thread so that a large query never stalls the event
loop (which also carries the event server's heartbeats).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from reviewd.devserver.errors import ApiError

if TYPE_CHECKING:
    from reviewd.devserver.server import DevServer

log = logging.getLogger("reviewd.devserver.api")


def _error_response(error: ApiError, strict: bool) -> web.Response:
    status = error.status if strict else 200
    return web.Response(
        text=json.dumps(error.to_wire()), status=status, content_type="application/json"
    )


def build_app(server: DevServer) -> web.Application:
    """The aiohttp application serving ``/api`` (the event server adds its own routes)."""
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def handle_api(request: web.Request) -> web.Response:
        strict = request.headers.get("ftrack-strict-api", "").strip().lower() == "true"
        user = request.headers.get("ftrack-user", "")
        key = request.headers.get("ftrack-api-key", "")
        try:
            assert server.store is not None, "requests are served only while the store is open"
            if not server.store.authenticate(user, key):
                log.info("refused /api request for user %r: invalid credentials", user)
                raise ApiError(
                    "InvalidCredentialsError",
                    "The API user or API key is not valid. Check ftrack-user and ftrack-api-key.",
                    status=401,
                )
            body = await request.read()
            try:
                batch = json.loads(body)
            except ValueError:
                raise ApiError(
                    "InvalidRequestError", "The request body is not valid JSON."
                ) from None
            if not isinstance(batch, list):
                raise ApiError(
                    "InvalidRequestError",
                    "The request body must be a JSON list of operations, "
                    f"not a JSON {type(batch).__name__}.",
                )
            text = await server.run_batch_async(batch, user)
        except ApiError as error:
            return _error_response(error, strict)
        except Exception:  # a bug must still answer in the documented form
            log.exception("unexpected error while handling /api")
            return _error_response(
                ApiError("ServerError", "Internal server error; see the server log.", status=500),
                strict,
            )
        return web.Response(text=text, content_type="application/json")

    app.router.add_post("/api", handle_api)
    return app
