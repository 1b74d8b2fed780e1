"""An ASGI wrapper that refuses HTTP bodies over a size before Django reads them.

Django's ASGI handler copies a whole request body into a temporary file before any
middleware runs, so without a bound at this level one large POST can fill the disk. This
answers 413 at once when ``Content-Length`` is over the limit, and for bodies sent without
one (chunked), as soon as the bytes received pass it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body passed the limit while it was being received."""


def _too_large_body(limit_bytes: int) -> bytes:
    error = {
        "message": f"The request body is larger than {limit_bytes} bytes.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    return json.dumps({"error": error}).encode()


class BodyLimit:
    """Wrap an ASGI app; HTTP bodies over ``limit_bytes`` get a 413 JSON error."""

    def __init__(self, app: App, *, limit_bytes: Callable[[], int]) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass non-HTTP scopes through; meter HTTP bodies."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_bytes()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def metered_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, metered_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
