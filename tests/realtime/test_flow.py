"""Flow control on Daphne's socket, against a scripted protocol and transport."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from apps.realtime import flow
from apps.realtime.flow import SocketFlow


class FakeTransport:
    """The parts of Twisted's TCP transport that SocketFlow uses."""

    def __init__(self) -> None:
        self.bufferSize = 65536
        self.reading = True
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True


class FakeProtocol:
    """Daphne's WebSocket protocol: an application queue, a transport, a parser."""

    def __init__(self) -> None:
        self.application_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.transport = FakeTransport()
        self.parsed: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's name
        self.parsed.append(data)


def _flow() -> tuple[SocketFlow, FakeProtocol]:
    protocol = FakeProtocol()

    async def handle_reply(protocol: Any, message: Any) -> None:
        return None

    return SocketFlow(functools.partial(handle_reply, protocol)), protocol


def _frame(text: str = "x") -> dict[str, Any]:
    return {"type": "websocket.receive", "text": text}


async def test_reading_pauses_above_the_high_mark_and_resumes_below_the_low_one() -> None:
    socket_flow, protocol = _flow()
    for _ in range(flow.QUEUE_HIGH_FRAMES):
        protocol.application_queue.put_nowait(_frame())
    socket_flow.meter_inbound()
    assert not protocol.transport.reading
    while protocol.application_queue.qsize() > flow.QUEUE_LOW_FRAMES:
        protocol.application_queue.get_nowait()
    socket_flow.meter_inbound()
    assert protocol.transport.reading


async def test_queued_bytes_also_pause_reading() -> None:
    socket_flow, protocol = _flow()
    protocol.application_queue.put_nowait(_frame("x" * flow.QUEUE_HIGH_BYTES))
    socket_flow.meter_inbound()
    assert not protocol.transport.reading


async def test_an_over_budget_client_is_not_read_for_its_pause_then_read_in_small_pieces() -> None:
    socket_flow, protocol = _flow()
    socket_flow.pause_for(0.05)
    assert not protocol.transport.reading
    assert protocol.transport.bufferSize == flow.OVER_BUDGET_READ_BYTES
    await asyncio.sleep(0.1)
    assert protocol.transport.reading


async def test_a_flooder_on_its_way_out_is_read_but_not_parsed() -> None:
    socket_flow, protocol = _flow()
    for _ in range(100):
        protocol.application_queue.put_nowait(_frame())
    protocol.application_queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
    socket_flow.pause_for(10)
    socket_flow.discard_inbound()
    # Reading again (so the close goes out and TCP ends with a FIN), parsing nothing more.
    assert protocol.transport.reading
    protocol.dataReceived(b"\x81\x05hello" * 1000)
    assert protocol.parsed == []
    # Frames already read are gone; the disconnect still reaches the consumer.
    assert [protocol.application_queue.get_nowait()] == [
        {"type": "websocket.disconnect", "code": 1006}
    ]
    assert protocol.application_queue.empty()


async def test_without_daphne_it_does_nothing() -> None:
    async def send(message: Any) -> None:
        return None

    socket_flow = SocketFlow(send)
    socket_flow.meter_inbound()
    socket_flow.pause_for(1)
    socket_flow.discard_inbound()
    assert socket_flow.send_backlog_bytes() is None
