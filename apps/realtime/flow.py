"""Flow control on Daphne's socket, which Daphne itself does not do.

Daphne reads every frame a client sends into the application's queue (unbounded) and
writes every event the application sends into Twisted's buffer (unbounded): a client that
sends flat out, or stops reading, grows server memory without limit, and no ASGI message
can tell the server to stop. Daphne's ASGI ``send`` is ``partial(handle_reply,
protocol)``, which gives the application the connection's protocol: its
``application_queue`` (frames read, not yet received by the consumer) and its Twisted
``transport``. ``SocketFlow`` uses them to

* stop reading from the socket while too much is queued (``transport.pauseProducing``),
  so TCP pushes back on the client, and read again once the consumer has caught up;
* tell how much sent data the client has not taken yet (Twisted's write buffer);
* send a large text event as a fragmented message, a piece per loop turn, instead of one
  call that copies megabytes twice on the event loop (Daphne encodes the text, autobahn
  joins header and payload).

Under any other ASGI server (or a test communicator) these are unknown and it does nothing;
the consumer's own budgets still apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Reading stops above either mark and resumes once both are below the low ones.
QUEUE_HIGH_FRAMES = 32
QUEUE_LOW_FRAMES = 8
QUEUE_HIGH_BYTES = 4 * 1024 * 1024
QUEUE_LOW_BYTES = 1024 * 1024
# Socket read size for a client that went over its budget (Twisted reads 64 KiB at a time:
# about 1,200 tiny frames, all parsed on the event loop before the consumer can pause).
OVER_BUDGET_READ_BYTES = 4096
# Fragments of a large outgoing message (RFC 6455 §5.4: every client reassembles them).
SEND_PIECE_BYTES = 256 * 1024


class SocketFlow:
    """Inbound pause/resume and outbound backlog of one Daphne WebSocket connection."""

    def __init__(self, base_send: Any) -> None:
        args = getattr(base_send, "args", ())
        protocol = args[0] if args else None
        self._protocol: Any = protocol
        self._queue: Any = getattr(protocol, "application_queue", None)
        self._transport: Any = getattr(protocol, "transport", None)
        self.paused = False
        self._hold_until = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def _queued(self) -> tuple[int, int]:
        """Frames and bytes waiting; bytes are only summed below the frame mark.

        Called per frame, so summing a long queue would make a burst quadratic; above the
        frame mark the byte count does not matter (reading pauses either way).
        """
        queue = self._queue
        frames = queue.qsize()
        if frames >= QUEUE_HIGH_FRAMES:
            return frames, 0
        messages = getattr(queue, "_queue", ())
        size = sum(len(m.get("text") or m.get("bytes") or b"") for m in messages)
        return frames, size

    def meter_inbound(self) -> None:
        """Call for every frame received: pause or resume reading as the queue demands."""
        if self._queue is None or self._transport is None:
            return
        frames, size = self._queued()
        if not self.paused and (frames >= QUEUE_HIGH_FRAMES or size >= QUEUE_HIGH_BYTES):
            self._transport.pauseProducing()
            self.paused = True
        elif self.paused and frames <= QUEUE_LOW_FRAMES and size <= QUEUE_LOW_BYTES:
            if asyncio.get_running_loop().time() >= self._hold_until:
                self.resume()

    def pause_for(self, seconds: float) -> None:
        """Stop reading for ``seconds``: a client over its budget is slowed by TCP.

        Its frames then wait in the kernel and in the client instead of being read and
        parsed by the server only to be dropped, which costs the other sessions.
        """
        if self._transport is None:
            return
        # From now on this client is read in small pieces, so the next read after the pause
        # hands over a few dozen frames before the budget can stop it again, not a thousand.
        if getattr(self._transport, "bufferSize", 0) > OVER_BUDGET_READ_BYTES:
            self._transport.bufferSize = OVER_BUDGET_READ_BYTES
        loop = asyncio.get_running_loop()
        self._hold_until = max(self._hold_until, loop.time() + seconds)
        if not self.paused:
            self._transport.pauseProducing()
            self.paused = True
        if self._timer is None:
            self._timer = loop.call_later(seconds, self._hold_over)

    def _hold_over(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        remaining = self._hold_until - loop.time()
        if remaining > 0:
            self._timer = loop.call_later(remaining, self._hold_over)
            return
        frames, size = self._queued() if self._queue is not None else (0, 0)
        if frames <= QUEUE_LOW_FRAMES and size <= QUEUE_LOW_BYTES:
            self.resume()

    def resume(self) -> None:
        """Read from the socket again (also on the way out, so a close can be read)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._hold_until = 0.0
        if self.paused and self._transport is not None:
            self._transport.resumeProducing()
        self.paused = False

    def discard_inbound(self) -> None:
        """Read the socket again but throw away what arrives, unparsed (a flooder's way out).

        A client closed for flooding has megabytes waiting in the kernel's receive buffer;
        resuming normally would parse every frame of it on the event loop (seconds, for
        tiny frames) only to drop them. Discarding keeps its TCP window open so the close
        frame goes out and the connection ends with a FIN rather than a reset. The client's
        closing reply is among what is discarded, so the WebSocket library ends the
        connection when its closing handshake times out (autobahn: one second).
        """
        if self._protocol is None or self._transport is None:
            self.resume()
            return

        def discard(data: bytes) -> None:
            return None

        # An instance attribute shadows the protocol's method, which Twisted looks up per read.
        self._protocol.dataReceived = discard
        # Frames already read but not yet received would be dropped one by one; drop them
        # here in one go. Other messages (a disconnect) stay.
        queue = self._queue
        if queue is not None:
            kept = [m for m in getattr(queue, "_queue", ()) if m.get("type") != "websocket.receive"]
            while not queue.empty():
                queue.get_nowait()
            for message in kept:
                queue.put_nowait(message)
        self.resume()

    def can_send_in_pieces(self) -> bool:
        """Whether ``send_text_in_pieces`` can be used now.

        That is: an open autobahn connection, no compression, no message being sent.
        """
        protocol = self._protocol
        return (
            protocol is not None
            and hasattr(protocol, "beginMessage")
            and getattr(protocol, "_perMessageCompress", None) is None
            and getattr(protocol, "state", None) == getattr(protocol, "STATE_OPEN", object())
            and getattr(protocol, "send_state", None)
            == getattr(protocol, "SEND_STATE_GROUND", object())
        )

    async def send_text_in_pieces(self, payload: bytes) -> None:
        """Send UTF-8 ``payload`` as one text message in fragments, yielding between them.

        Each fragment is a whole frame, so control frames (pings, a close) may come between
        them as the RFC allows. The caller must not send anything else meanwhile.
        """
        protocol = self._protocol
        protocol.beginMessage(isBinary=False)
        for start in range(0, len(payload), SEND_PIECE_BYTES):
            if protocol.state != protocol.STATE_OPEN:
                return  # closed meanwhile: the rest has nowhere to go
            protocol.sendMessageFrame(payload[start : start + SEND_PIECE_BYTES])
            await asyncio.sleep(0)
        protocol.endMessage()

    def send_backlog_bytes(self) -> int | None:
        """Bytes sent to the client that it has not taken yet (None: unknown).

        Twisted's TCP transport keeps unsent bytes in ``dataBuffer`` (from ``offset``)
        plus ``_tempDataLen``.
        """
        data = getattr(self._transport, "dataBuffer", None)
        if not isinstance(data, bytes | bytearray | memoryview):
            return None
        offset = int(getattr(self._transport, "offset", 0))
        return len(data) - offset + int(getattr(self._transport, "_tempDataLen", 0))
