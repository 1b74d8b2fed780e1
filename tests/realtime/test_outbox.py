"""The outbox's policy: bounded, waits when full, ends a client that stopped reading."""

from __future__ import annotations

import asyncio

import pytest

from apps.realtime.outbox import Outbox

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _outbox(send, *, backlog=lambda: None, stall_s: float = 0.3, **kw):  # type: ignore[no-untyped-def]
    calls: dict[str, int] = {"stalled": 0, "failed": 0}
    outbox = Outbox(
        send=send,
        backlog=backlog,
        backlog_limit=kw.get("backlog_limit", 100),
        max_events=kw.get("max_events", 3),
        max_bytes=kw.get("max_bytes", 1000),
        stall_s=stall_s,
        on_stall=lambda: calls.__setitem__("stalled", calls["stalled"] + 1),
        on_send_failed=lambda: calls.__setitem__("failed", calls["failed"] + 1),
    )
    return outbox, calls


async def test_events_are_sent_in_order_and_drained() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    outbox, _ = _outbox(send)
    outbox.start()
    for k in range(10):
        await outbox.put(str(k))
    await outbox.drain(1.0)
    assert sent == [str(k) for k in range(10)]


async def test_a_full_outbox_makes_the_sender_wait_then_gives_up_on_a_stalled_client() -> None:
    gate = asyncio.Event()

    async def send(text: str) -> None:
        await gate.wait()

    outbox, calls = _outbox(send, max_events=2)
    outbox.start()
    await outbox.put("0")
    await asyncio.sleep(0.01)  # the sender takes it and blocks on the client
    await outbox.put("1")
    await outbox.put("2")  # two queued: full
    waiting = asyncio.ensure_future(outbox.put("over"))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # backpressure: the producer waits
    await asyncio.wait_for(waiting, 1.0)  # … until the stall limit
    assert calls["stalled"] == 1
    gate.set()
    await outbox.drain(1.0)


async def test_the_sender_holds_while_the_transport_is_backlogged() -> None:
    sent: list[str] = []
    backlog = {"bytes": 1000}

    async def send(text: str) -> None:
        sent.append(text)

    outbox, _ = _outbox(send, backlog=lambda: backlog["bytes"])
    outbox.start()
    await outbox.put("a")
    await asyncio.sleep(0.1)
    assert sent == []
    backlog["bytes"] = 0
    await asyncio.sleep(0.1)
    assert sent == ["a"]
    await outbox.drain(1.0)


async def test_a_failed_send_closes_the_outbox() -> None:
    async def send(text: str) -> None:
        raise ConnectionError

    outbox, calls = _outbox(send)
    outbox.start()
    await outbox.put("a")
    await asyncio.sleep(0.05)
    assert outbox.closed and calls["failed"] == 1
    await outbox.put("b")  # ignored, never raises
    await outbox.drain(1.0)
