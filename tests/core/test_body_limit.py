"""HTTP bodies over the limit are refused before the application reads them whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from apps.core.body_limit import BodyLimit

pytestmark = pytest.mark.asyncio

LIMIT = 1000


class Reader:
    """An application that reads the whole body, as Django's handler does, then answers 200."""

    def __init__(self) -> None:
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            self.read += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _post(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> dict:
    scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": headers}
    comm = ApplicationCommunicator(app, scope)
    for i, chunk in enumerate(chunks):
        await comm.send_input(
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        )
    start = await comm.receive_output(2)
    body = await comm.receive_output(2)
    return {"status": start["status"], "body": body["body"]}


async def test_a_declared_oversized_body_is_refused_unread() -> None:
    inner = Reader()
    app = BodyLimit(inner, limit_bytes=lambda: LIMIT)
    answer = await _post(app, [b"x" * 10], [(b"content-length", b"5000000000")])
    assert answer["status"] == 413
    assert json.loads(answer["body"])["error"]["code"] == "request_too_large"
    assert inner.read == 0


async def test_a_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    inner = Reader()
    app = BodyLimit(inner, limit_bytes=lambda: LIMIT)
    answer = await _post(app, [b"x" * 400] * 10, [])
    assert answer["status"] == 413
    assert inner.read <= LIMIT


async def test_bodies_within_the_limit_pass() -> None:
    inner = Reader()
    app = BodyLimit(inner, limit_bytes=lambda: LIMIT)
    answer = await _post(app, [b"x" * 500, b"x" * 500], [(b"content-length", b"1000")])
    assert answer == {"status": 200, "body": b"ok"}
    assert inner.read == LIMIT
