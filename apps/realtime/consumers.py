"""WebSocket edges: ``/v1/realtime`` (OpenAI, xStar) and ``/api/realtime-api`` (NavTalk).

The consumer parses the handshake, asks ``admission.realtime_admit`` whether the
connection may become a session, builds a ``RealtimeSession`` and then only moves frames:
client frames into the session (metered by an ``InboundBudget`` before any parsing),
server events from the session's bounded outbox to the socket (spelled for the dialect by
``protocol.codec``). A refused connection is accepted just long enough to send one
OpenAI-shaped ``error`` event, then closed with a matching code, so clients can show the
reason.

However a session ends (client gone, expiry, revocation, a flood, a client that stops
reading, a failed task, server shutdown, Daphne cancelling the application) it ends
through ``_end``: once, in its own task so the caller's cancellation cannot cut it short,
saving the transcript and usage and recording the end before the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.core import metrics
from apps.core.ids import event_id as new_event_id
from apps.core.ids import session_id as new_session_id
from apps.core.tasks import fire_and_forget
from apps.core.workers import current_worker_id

from .admission import Admitted, Handshake, Refused, handshake_parse, realtime_admit
from .flow import SocketFlow
from .hosting import inbound_limits, session_build, session_end_record
from .inbound import InboundBudget, Verdict
from .live import LiveSession, headroom_check, live_sessions
from .outbox import Outbox
from .protocol.codec import Dialect, dump_server_event, render_server_text
from .protocol.errors import ProtocolError
from .session.deps import UnknownName
from .session.session import RealtimeSession
from .session.sink import WebSocketAudioSink
from .store import DatabaseStore

logger = logging.getLogger(__name__)

OUTBOX_EVENTS = 1_024
OUTBOX_BYTES = 8 * 1024 * 1024
# Server events that can carry whole items' audio: serialised off the event loop.
RENDER_OFF_LOOP = frozenset({"conversation.item.retrieved"})
# Events at least this long (an item's minutes of audio) are encoded off the loop and sent
# in fragments (apps/realtime/flow.py).
SEND_IN_PIECES_CHARS = 1024 * 1024
# Routed /iwebrtc signaling messages that may wait for this session's avatar links.
AVATAR_SIGNALS = 32
# How long a finished session may take to flush its last events to the socket.
DRAIN_TIMEOUT_S = 2.0
# A client over its inbound budget is not read from for at least this long.
MIN_OVER_BUDGET_PAUSE_S = 0.1
# Close codes (4000–4999 are for applications): the HTTP status a REST API would use + 4000;
# standard codes where one fits (1001 going away, 1008 policy, 1011 server error, 1013 busy).
CLOSE_CODES = {
    "invalid_api_key": 4001,
    "missing_api_key": 4001,
    "origin_not_allowed": 4003,
    "host_not_allowed": 4003,
    "user_mismatch": 4003,
    "model_not_found": 4004,
    "character_not_found": 4004,
    "session_expired": 4008,
    "rate_limit_exceeded": 4029,
    "too_many_sessions": 4029,
    "insufficient_quota": 4029,
    "server_busy": 1013,
    "server_shutting_down": 1013,
}


def _admit_off_loop(hs: Handshake, session_id: str) -> Any:
    # Thread-sensitive like every other ORM call of the consumer, with old connections
    # closed around it, as Channels does for its consumers.
    return DatabaseSyncToAsync(realtime_admit)(
        hs, session_id=session_id, transport="websocket", worker_id=current_worker_id()
    )


class RealtimeConsumer(AsyncWebsocketConsumer):
    """One realtime session over one WebSocket."""

    navtalk = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; when Daphne cancels it, still end the session properly.

        Daphne cancels an application that outlives its client by
        ``application_close_timeout`` (and, when it can, every application at shutdown,
        where ``live.shutdown_sessions`` has already begun ending each session with an
        error and 1001). Either way the transcript, usage and end are saved.
        """
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            if getattr(self, "session", None) is not None:
                await self._end_shielded("client_closed", None, None)
            raise

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Hand a message to its handler, without Channels' per-message database clean-up.

        Channels runs ``close_old_connections`` in asgiref's one shared sync thread before
        every message. For a socket carrying an audio append every 20 ms that hop was most
        of the per-frame cost (a worker managed ~100 frames a second under a flood), and it
        queues every session behind every other. Every ORM call here goes through
        ``DatabaseSyncToAsync``, which cleans up around itself, so nothing is lost.
        """
        if str(message.get("type", "")).startswith("avatar."):
            self._avatar_signal(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- the avatar's video on a peer of its own (NavTalk /iwebrtc) ---------------------------

    @property
    def session_group(self) -> str:
        """The channel-layer group reaching this session from any worker."""
        return f"rt.session.{self.session_id}"

    def _avatar_signal(self, message: dict[str, Any]) -> None:
        """Queue routed ``/iwebrtc`` signaling for this session's avatar links.

        Overflow policy: at most ``AVATAR_SIGNALS`` messages wait (signaling is a handful
        per page); more are dropped with a warning, and the page's own timeout reports it.
        Handled in order by one task, never in ``dispatch``: preparing a character and
        gathering an offer take a while, and the socket's frames must not wait for them.
        """
        if self.session is None or self.closed:
            return
        if self._avatar_queue is None:
            self._avatar_queue = asyncio.Queue(maxsize=AVATAR_SIGNALS)
            self._avatar_task = asyncio.ensure_future(self._avatar_worker())
        try:
            self._avatar_queue.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("avatar signaling queue full; message dropped", extra=self._log)

    async def _avatar_worker(self) -> None:
        from apps.rtc.avatar_link import AvatarLinks  # the rtc app builds on this one
        from apps.rtc.call import render_executor
        from apps.rtc.services import avatar_stream_prepare

        assert self._avatar_queue is not None and self.session is not None
        sink = self.session.sink
        assert isinstance(sink, WebSocketAudioSink)
        layer = self.channel_layer
        self.avatar_links = AvatarLinks(
            session_id=self.session_id,
            license_id=self.license_id,
            character_id=self.character_id,
            observers=sink.observers,
            reply=layer.send,
            fps=settings.AVATAR_FPS,
            executor=render_executor(),
            prepare=avatar_stream_prepare,
        )
        while True:
            message = await self._avatar_queue.get()
            try:
                await self.avatar_links.handle(message)
            except Exception:
                logger.exception("avatar signaling failed", extra=self._log)

    async def connect(self) -> None:
        """Admit, then accept and start the session (or refuse with an error event)."""
        self.session: RealtimeSession | None = None
        self.store: DatabaseStore | None = None
        self.closed = False
        self.accepted = False
        self._end_task: asyncio.Task[None] | None = None
        self.budget = InboundBudget(inbound_limits(), now_s=time.monotonic())
        self.flow = SocketFlow(self.base_send)
        self.license_id = 0
        self.character_id: int | None = None
        self._avatar_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._avatar_task: asyncio.Task[None] | None = None
        self.avatar_links: Any = None
        self.outbox = Outbox(
            send=self._send_text,
            backlog=self.flow.send_backlog_bytes,
            backlog_limit=settings.REALTIME_SEND_BACKLOG_BYTES,
            max_events=OUTBOX_EVENTS,
            max_bytes=OUTBOX_BYTES,
            stall_s=settings.REALTIME_OUTBOX_STALL_S,
            on_stall=self._outbox_stalled,
            on_send_failed=self._send_failed,
        )
        hs = handshake_parse(self.scope, navtalk=self.navtalk)
        self.dialect: Dialect = hs.dialect
        self.session_id = new_session_id()
        self.subprotocol = "realtime" if hs.offered_realtime else None
        live = live_sessions()
        try:
            headroom_check()
        except Refused as exc:
            await self._refuse(exc)
            return
        # Hold a place among the worker's sessions while admitting, so connects arriving
        # together cannot all pass the per-worker cap.
        live.admitting += 1
        try:
            await self._admit_and_start(hs)
        finally:
            live.admitting -= 1

    async def _admit_and_start(self, hs: Handshake) -> None:
        try:
            admitted = await _admit_off_loop(hs, self.session_id)
        except Refused as exc:
            await self._refuse(exc)
            return
        # The session's row exists from here on: whatever fails now must end it. Accept now:
        # loading the engines for the first session can outlast Daphne's 5 s handshake
        # timeout, and a refusal from here on is an error event and a close all the same.
        try:
            await self.accept(subprotocol=self.subprotocol)
            self.accepted = True
            await self._start(admitted)
        except Refused as exc:
            await self._end_conversation("error")
            await self._refuse(exc)
        except Exception:
            logger.exception("starting a realtime session failed", extra=self._log)
            error = ProtocolError(
                "The server could not start the session.", None, "server_error", type="server_error"
            )
            if self.session is None:
                await self._end_conversation("error")
                await self._refuse(
                    Refused(error.message, "server_error", error_type="server_error")
                )
            else:
                await self._end_shielded("error", 1011, error)

    async def _start(self, admitted: Admitted) -> None:
        session, store = await session_build(
            admitted,
            session_id=self.session_id,
            dialect=self.dialect,
            send=self._enqueue,
            close=self._close_from_session,
            sink_factory=WebSocketAudioSink,
        )
        # From here a failure ends the session through _end, which saves and records it.
        self.session = session
        metrics.session_opened("websocket")
        self.store = store
        store.start()
        self.outbox.start()
        self.license_id = admitted.credential.license.pk
        self.character_id = admitted.character_id
        if self.channel_layer is not None:
            try:
                await self.channel_layer.group_add(self.session_group, self.channel_name)
            except Exception:  # noqa: BLE001 - the session works without routed signaling
                logger.warning("joining the session group failed", extra=self._log)
        live_sessions().register(
            LiveSession(
                session_id=self.session_id,
                license_id=admitted.credential.license.pk,
                transport="websocket",
                end=self._end_from_watch,
            )
        )
        try:
            await session.start()
        except UnknownName as exc:
            # The configured voice (a character's, a secret's) is not usable by this key.
            await self._end_shielded("error", 4000, ProtocolError(str(exc), None, "invalid_value"))
            return
        logger.info(
            "realtime session started",
            extra={"session_id": self.session_id, "dialect": self.dialect},
        )

    @property
    def _log(self) -> dict[str, str]:
        return {"session_id": getattr(self, "session_id", "")}

    async def _refuse(self, exc: Refused) -> None:
        metrics.connect_refused(exc.code)
        logger.info("realtime connection refused", extra={**self._log, "code": exc.code})
        if not self.accepted:
            await self.accept(subprotocol=self.subprotocol)
            self.accepted = True
        described = ProtocolError(exc.message, None, exc.code, type=exc.error_type)
        error = {
            "type": "error",
            "event_id": new_event_id(),
            "error": {**described.as_dict(), "event_id": None},
        }
        await self.send(text_data=dump_server_event(error))
        self.closed = True
        await self.close(code=CLOSE_CODES.get(exc.code, 4000), reason=exc.code)

    # --- frames in ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Meter a frame, then hand it to the session; what is over a limit is dropped."""
        session = self.session
        if session is None or self.closed:
            return
        self.flow.meter_inbound()
        # Characters, not bytes, for text: events are JSON with base64 audio, i.e. ASCII.
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        verdict = self.budget.admit(size, now_s=time.monotonic())
        if verdict is not Verdict.ACCEPT:
            await self._over_budget(session, verdict)
            return
        if size > settings.REALTIME_MAX_EVENT_BYTES:
            await session.error(
                ProtocolError(
                    f"The event is {size} bytes; the limit is "
                    f"{settings.REALTIME_MAX_EVENT_BYTES} bytes. Send audio in smaller appends.",
                    None,
                    "event_too_large",
                )
            )
            return
        if text_data is not None:
            await session.receive_text(text_data)
        elif bytes_data:
            await session.receive_audio(bytes_data)

    async def _over_budget(self, session: RealtimeSession, verdict: Verdict) -> None:
        metrics.inbound_dropped()
        # Read nothing more from this client until its budget has refilled (TCP pushes back).
        self.flow.pause_for(max(MIN_OVER_BUDGET_PAUSE_S, self.budget.refill_wait_s()))
        error = ProtocolError(
            "You are sending faster than this session can take "
            f"({settings.REALTIME_INBOUND_EVENTS_PER_S:g} events/s, "
            f"{settings.REALTIME_INBOUND_BYTES_PER_S / 1024:.0f} KiB/s); events over it are "
            "dropped, and a client that keeps going is disconnected.",
            None,
            "rate_limit_exceeded",
            type="requests",
        )
        if verdict is Verdict.CLOSE:
            logger.warning("closing a client that floods its session", extra=self._log)
            await self._end_shielded("client_flooding", 1008, error)
        elif verdict is Verdict.DROP_AND_TELL:
            logger.info("dropping input over the session's budget", extra=self._log)
            await session.error(error)

    # --- events out --------------------------------------------------------------------------

    def _render(self, event: dict[str, Any]) -> str | None:
        """The event as the client's dialect spells it, as JSON text (None: not sent)."""
        expires_at = self.session.expires_at if self.session else 0
        return render_server_text(
            event, dialect=self.dialect, session_id=self.session_id, expires_at=expires_at
        )

    async def _enqueue(self, event: dict[str, Any]) -> None:
        """The session's ``send``: render, then queue for the sender (``Outbox``'s policy).

        When the outbox is full the session's send waits (backpressure on the response,
        the input task, ...); still full after ``REALTIME_OUTBOX_STALL_S`` means the client
        stopped reading, and the session ends (1008).
        """
        if self.closed:
            return
        try:
            if event.get("type") in RENDER_OFF_LOOP:
                # Minutes of base64 audio take tens of milliseconds to serialise.
                loop = asyncio.get_running_loop()
                text = await loop.run_in_executor(None, self._render, event)
            else:
                text = self._render(event)
        except Exception:
            # A server event we cannot render is our bug: say so and end the session rather
            # than leave the client waiting on a silent socket.
            logger.exception("rendering a server event failed", extra=self._log)
            error = ProtocolError(
                "The server failed to send an event; the session was closed.",
                None,
                "server_error",
                type="server_error",
            )
            fire_and_forget(
                self._end_shielded("error", 1011, error, via_outbox=False), name="end:render"
            )
            return
        if text is not None and not self.closed:
            await self.outbox.put(text)

    def _outbox_stalled(self) -> None:
        logger.warning("client stopped reading; ending its session", extra=self._log)
        # The outbox is full, so nothing more can be said; just close.
        fire_and_forget(
            self._end_shielded("client_not_reading", 1008, None), name="end:not-reading"
        )

    def _send_failed(self) -> None:
        logger.info("send failed; client gone", extra=self._log)
        self.closed = True

    async def _send_text(self, text: str) -> None:
        if self.closed:
            return
        if len(text) >= SEND_IN_PIECES_CHARS and self.flow.can_send_in_pieces():
            loop = asyncio.get_running_loop()
            payload = await loop.run_in_executor(None, text.encode, "utf-8")
            await self.flow.send_text_in_pieces(payload)
        else:
            await self.send(text_data=text)

    # --- ending ------------------------------------------------------------------------------

    async def _close_from_session(self, code: int, reason: str) -> None:
        # The session already said why (e.g. session_expired) before asking to close.
        await self._end_shielded(reason, CLOSE_CODES.get(reason, code), None)

    async def _end_from_watch(self, reason: str, close_code: int, error: ProtocolError) -> None:
        await self._end_shielded(reason, close_code, error)

    async def disconnect(self, code: int) -> None:
        """Client gone: end the session, save what is left, mark the conversation ended."""
        self.closed = True
        if hasattr(self, "outbox"):
            self.outbox.closed = True
        await self._end_shielded("client_closed", None, None)

    async def _end_shielded(
        self,
        reason: str,
        close_code: int | None,
        error: ProtocolError | None,
        *,
        via_outbox: bool = True,
    ) -> None:
        """End the session once, in a task of its own that outlives the caller's cancellation."""
        if self._end_task is None:
            self._end_task = asyncio.ensure_future(
                self._end(reason, close_code, error, via_outbox=via_outbox)
            )
        await asyncio.shield(self._end_task)

    async def _end(
        self,
        reason: str,
        close_code: int | None,
        error: ProtocolError | None,
        *,
        via_outbox: bool,
    ) -> None:
        session = self.session
        if session is None:
            return
        if error is not None and not self.closed:
            event = {"type": "error", "error": {**error.as_dict(), "event_id": None}}
            if via_outbox and self.outbox.running:
                await session.emit(event)
            else:
                self.closed = True
                await self._send_quietly({"event_id": new_event_id(), **event})
        # Stop the session first: a response in flight ends cancelled, its partial item is
        # queued for saving and its response.done joins the outbox, which is then flushed.
        await session.shutdown(reason=reason)
        await self._avatar_end()
        if reason == "client_flooding":
            self.flow.discard_inbound()
        else:
            self.flow.resume()
        await self.outbox.drain(DRAIN_TIMEOUT_S)
        self.closed = True
        self.outbox.closed = True
        if self.store is not None:
            await self.store.close()
        live_sessions().unregister(self.session_id)
        await self._end_conversation(session.end_reason or reason)
        metrics.session_closed("websocket", session.end_reason or reason)
        if close_code is not None:
            try:
                await self.close(code=close_code, reason=reason)
            except Exception:  # noqa: BLE001 - the client may be gone already
                logger.info("close failed; client gone", extra=self._log)

    async def _avatar_end(self) -> None:
        if self._avatar_task is not None:
            self._avatar_task.cancel()
            await asyncio.gather(self._avatar_task, return_exceptions=True)
        if self.avatar_links is not None:
            await self.avatar_links.close()
        if self.channel_layer is not None:
            try:
                await self.channel_layer.group_discard(self.session_group, self.channel_name)
            except Exception:  # noqa: BLE001 - the layer (Redis) may be down; groups expire
                logger.info("leaving the session group failed", extra=self._log)

    async def _send_quietly(self, event: dict[str, Any]) -> None:
        try:
            text = self._render(event)
            if text is not None:
                await self.send(text_data=text)
        except Exception:  # noqa: BLE001 - best effort on the way out
            logger.info("could not send the final error", extra=self._log)

    async def _end_conversation(self, reason: str) -> None:
        await session_end_record(self.session_id, reason)


class NavTalkConsumer(RealtimeConsumer):
    """``/api/realtime-api?license=…&characterName=…``: the same session, beta names."""

    navtalk = True
