"""One WebRTC call: a server peer that hosts a realtime session.

What the WebSocket consumer does for a socket, a ``Call`` does for a peer connection: the
``oai-events`` data channel carries exactly the WebSocket protocol's JSON events both ways
(metered by the same inbound budget, sent through the same bounded ``Outbox``), the
microphone track is the session's input audio, the reply plays on an Opus track through
``TrackAudioSink``, and, when the offer asks for video, the avatar's frames ride in the
same call on the same media clock. The session itself does not know any of this.

A call ends once, through ``end``: on hangup, when the peer closes or fails (ICE consent
lapses within ``RTC_CONSENT_INTERVAL_S × RTC_CONSENT_FAILURES`` seconds of a closed tab),
when the connection never comes up, at session expiry, license revocation or server
shutdown. Ending saves the transcript and usage, records the end and closes the peer,
which frees its ports, tracks and tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import aioice.ice
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from channels.layers import get_channel_layer
from django.conf import settings

from apps.avatar.life import Animator
from apps.avatar.render.base import AvatarStream
from apps.core import metrics
from apps.core.audio import StreamResampler
from apps.core.ids import event_id as new_event_id
from apps.core.ids import prefixed_id
from apps.core.tasks import fire_and_forget
from apps.realtime.admission import Admitted, Refused
from apps.realtime.hosting import inbound_limits, session_build, session_end_record
from apps.realtime.inbound import InboundBudget, Verdict
from apps.realtime.live import LiveSession, live_sessions
from apps.realtime.outbox import Outbox
from apps.realtime.protocol.codec import Dialect, dump_server_event, render_server_text
from apps.realtime.protocol.errors import ProtocolError
from apps.realtime.session.deps import UnknownName
from apps.realtime.session.session import RealtimeSession
from apps.realtime.store import DatabaseStore

from .ice import rtc_configuration
from .media import AvatarVideoTrack, MediaClock, ReplyAudioTrack, negotiated_vp8
from .sdp import SdpRefused, describe_error
from .sideband import call_group
from .sink import TrackAudioSink

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "oai-events"
INPUT_RATE = 16_000
# Microphone audio is handed to the session in batches this long (see _read_microphone).
MIC_BATCH_MS = 40
OUTBOX_EVENTS = 1_024
OUTBOX_BYTES = 4 * 1024 * 1024
# SCTP data not yet taken by the peer above which the next event waits.
CHANNEL_BACKLOG_BYTES = 1024 * 1024
DRAIN_TIMEOUT_S = 2.0
# Chrome's max-message-size: a larger event could not be delivered, so it is replaced by an
# error saying so (only conversation.item.retrieved of a long item gets there).
MAX_CHANNEL_MESSAGE_BYTES = 256 * 1024
# How often a call checks its connection and its peer's use of the SCTP window, and how far
# past the window (bytes) a peer may go before it is cut off.
SCTP_CHECK_S = 0.5
SCTP_OVERRUN_BYTES = 256 * 1024
# Sideband connections one call takes at once.
MAX_SIDEBANDS = 4


@cache
def render_executor() -> ThreadPoolExecutor:
    """The threads that render avatar frames for this process's calls."""
    return ThreadPoolExecutor(settings.RTC_RENDER_WORKERS, thread_name_prefix="rtc-render")


def _tune_consent() -> None:
    # aioice checks consent every 5 s and gives up after 6 failures: a closed tab would be
    # noticed only after ~30 s. These module constants are read on every check.
    aioice.ice.CONSENT_INTERVAL = settings.RTC_CONSENT_INTERVAL_S
    aioice.ice.CONSENT_FAILURES = settings.RTC_CONSENT_FAILURES


def mono_int16(frame: Any) -> np.ndarray:
    """Downmix a decoded audio frame (packed or planar, any channel count) to int16 mono."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        planes = data.reshape(channels, -1)
    else:
        planes = data.reshape(-1, channels).T
    if planes.dtype != np.int16:
        scale = 32767.0 if planes.dtype.kind == "f" else 1.0
        planes = np.clip(planes.astype(np.float32) * scale, -32768, 32767)
    if channels == 1:
        return np.asarray(planes[0], dtype=np.int16)
    # Integer sum then divide: a float mean was a tenth of a call's CPU at 50 frames/s.
    total = planes[0].astype(np.int32)
    for plane in planes[1:]:
        total += plane
    return (total // channels).astype(np.int16)


class Call:
    """A peer connection and the session it carries."""

    def __init__(
        self,
        *,
        session_id: str,
        dialect: Dialect,
        character: AvatarStream | None,
        fps: int,
        ice_user: str,
    ) -> None:
        _tune_consent()
        self.id = prefixed_id("rtc")
        self.session_id = session_id
        self.dialect = dialect
        self.license_id: int | None = None
        self.pc = RTCPeerConnection(rtc_configuration(user=ice_user))
        self.clock = MediaClock()
        self.audio = ReplyAudioTrack(self.clock)
        self.avatar_stream = character
        self.animator = Animator(seed=hash(self.id) & 0xFFFF) if character else None
        self.video: AvatarVideoTrack | None = None
        self.fps = fps
        self.session: RealtimeSession | None = None
        self.store: DatabaseStore | None = None
        self.channel: Any = None
        self._channel_open = asyncio.Event()
        self.budget = InboundBudget(inbound_limits(), now_s=time.monotonic())
        self.outbox = Outbox(
            send=self._send_text,
            backlog=self._channel_backlog,
            backlog_limit=CHANNEL_BACKLOG_BYTES,
            max_events=OUTBOX_EVENTS,
            max_bytes=OUTBOX_BYTES,
            stall_s=settings.REALTIME_OUTBOX_STALL_S,
            on_stall=self._stalled,
            on_send_failed=self._send_failed,
        )
        self.observers: set[str] = set()
        """Channel names of attached sideband connections (any worker)."""
        self.control_channel: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._end_task: asyncio.Task[None] | None = None
        self.ended = False
        self.admitted = False
        self.started = False
        """Whether the session was announced (counted open, registered as live)."""
        """Whether the session's row exists (admission passed): ending must record it."""
        self.connected_at: float | None = None
        self.created_at = time.monotonic()
        self.first_video_frame_at: float | None = None
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def _log(self) -> dict[str, str]:
        return {"session_id": self.session_id, "call_id": self.id}

    # --- negotiation -----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the client's offer and return our answer (ICE gathered, no trickle).

        Raises:
            SdpRefused: aiortc could not use the offer (whatever it raised).
        """
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:  # noqa: BLE001 - aiortc's parser raises many kinds
            raise SdpRefused(f"The SDP offer could not be used: {describe_error(exc)}") from None
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if "audio" not in kinds:
            raise SdpRefused("The SDP offer has no usable audio section.")
        self.pc.addTrack(self.audio)
        if "video" in kinds and self.avatar_stream is not None and self.animator is not None:
            self.video = AvatarVideoTrack(
                self.clock,
                self.animator,
                self.avatar_stream,
                fps=self.fps,
                executor=render_executor(),
                on_frame=self._on_video_frame,
            )
            self.pc.addTrack(self.video)
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:  # noqa: BLE001 - e.g. no codec in common
            raise SdpRefused(
                f"No answer is possible for this offer: {describe_error(exc)}"
            ) from None
        if self.video is not None and negotiated_vp8(self.pc, self.video):
            self.video.encode_vp8()
        logger.info(
            "webrtc offer answered",
            extra={
                **self._log,
                "video": self.video is not None,
                "vp8_in_render_thread": bool(self.video and self.video.encoder),
            },
        )
        return self.pc.localDescription.sdp

    # --- the session -------------------------------------------------------------------------

    async def prepare(self, admitted: Admitted) -> None:
        """Build the session (the first call of a process loads the engines: seconds).

        Done before answering, so the ICE agent starts only when the answer goes out.

        Raises:
            Refused: The model cannot be used.
        """
        self.license_id = admitted.credential.license.pk
        session, store = await session_build(
            admitted,
            session_id=self.session_id,
            dialect=self.dialect,
            send=self._enqueue,
            close=self._close_from_session,
            sink_factory=lambda s: TrackAudioSink(s, self.audio, self.animator),
        )
        self.session = session
        self.store = store

    async def start(self) -> None:
        """Announce the session (``session.created`` waits for the channel) and watch it.

        Raises:
            Refused: The voice cannot be used by this key.
        """
        session = self.session
        assert session is not None and self.store is not None and self.license_id is not None
        self.store.start()
        metrics.session_opened("webrtc")
        self.started = True
        self.outbox.start()
        live_sessions().register(
            LiveSession(
                session_id=self.session_id,
                license_id=self.license_id,
                transport="webrtc",
                end=self._end_from_watch,
            )
        )
        try:
            await session.start()
        except UnknownName as exc:
            await self.end("error", None)
            raise Refused(str(exc), "invalid_value") from None
        self._spawn(self._watch(), name="watch")
        await self._join_control()
        logger.info("webrtc call started", extra={**self._log, "dialect": self.dialect})

    def _render(self, event: dict[str, Any]) -> str | None:
        expires_at = self.session.expires_at if self.session else 0
        return render_server_text(
            event, dialect=self.dialect, session_id=self.session_id, expires_at=expires_at
        )

    async def _enqueue(self, event: dict[str, Any]) -> None:
        """The session's ``send``: render, drive the avatar's mode, queue for the channel."""
        kind = event.get("type")
        if self.animator is not None:
            if kind == "input_audio_buffer.speech_started":
                self.animator.listen()
            elif kind == "input_audio_buffer.speech_stopped":
                self.animator.think()
        if self.outbox.closed:
            return
        if kind == "conversation.item.retrieved":
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(None, self._render, event)
        else:
            text = self._render(event)
        if text is None:
            return
        if self.observers:
            await self._tell_observers({"type": "sideband.event", "event": event})
        await self.outbox.put(text)

    async def _send_text(self, text: str) -> None:
        await self._channel_open.wait()
        if self.outbox.closed or self.channel is None or self.channel.readyState != "open":
            return
        if len(text) > MAX_CHANNEL_MESSAGE_BYTES:
            error = {
                "type": "error",
                "event_id": new_event_id(),
                "error": {
                    "type": "invalid_request_error",
                    "code": "event_too_large",
                    "message": (
                        f"An event of {len(text)} bytes cannot go over the data channel "
                        f"(limit {MAX_CHANNEL_MESSAGE_BYTES}); retrieve long items over a "
                        "WebSocket instead."
                    ),
                    "param": None,
                    "event_id": None,
                },
            }
            text = dump_server_event(error)
        self.channel.send(text)

    def _channel_backlog(self) -> int | None:
        channel = self.channel
        return None if channel is None else int(channel.bufferedAmount)

    def _stalled(self) -> None:
        logger.warning("peer stopped reading events; ending the call", extra=self._log)
        fire_and_forget(self.end("client_not_reading", None), name=f"end:{self.id}")

    def _send_failed(self) -> None:
        logger.info("event send failed; peer gone", extra=self._log)

    async def receive(self, text: str | bytes) -> None:
        """One client event (from the data channel or a sideband socket)."""
        session = self.session
        if session is None or self.ended:
            return
        verdict = self.budget.admit(len(text), now_s=time.monotonic())
        if verdict is Verdict.CLOSE:
            error = ProtocolError(
                "You are sending events faster than this session can take; the call was closed.",
                None,
                "rate_limit_exceeded",
                type="requests",
            )
            fire_and_forget(self.end("client_flooding", error), name=f"end:{self.id}")
            return
        if verdict is not Verdict.ACCEPT:
            metrics.inbound_dropped()
            if verdict is Verdict.DROP_AND_TELL:
                await session.error(
                    ProtocolError(
                        "You are sending events faster than this session can take; events "
                        "over it are dropped.",
                        None,
                        "rate_limit_exceeded",
                        type="requests",
                    )
                )
            return
        if isinstance(text, bytes):
            await session.receive_audio(text)
        else:
            await session.receive_text(text)

    # --- sideband control (over the channel layer, from any worker) -------------------------

    async def _join_control(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            self.control_channel = await layer.new_channel()
            await layer.group_add(call_group(self.id), self.control_channel)
        except Exception:  # noqa: BLE001 - the call works without sideband control
            logger.warning("joining the call's control group failed", extra=self._log)
            self.control_channel = None
            return
        self._spawn(self._control(layer, self.control_channel), name="control")

    async def _control(self, layer: Any, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a layer hiccup (Redis restarting)
                logger.warning("reading the call's control channel failed", extra=self._log)
                await asyncio.sleep(1.0)
                continue
            await self._on_control(layer, message)

    async def _on_control(self, layer: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        reply_to = message.get("reply_to")
        if kind == "sideband.attach" and isinstance(reply_to, str):
            if message.get("license_id") != self.license_id or self.session is None:
                return  # another license's call: the same silence as no call at all
            if len(self.observers) >= MAX_SIDEBANDS:
                return
            self.observers.add(reply_to)
            session = self.session
            await layer.send(
                reply_to,
                {
                    "type": "sideband.attached",
                    "call_channel": self.control_channel,
                    "session_id": self.session_id,
                    "expires_at": session.expires_at,
                    "created": {
                        "type": "session.created",
                        "event_id": new_event_id(),
                        "session": session.config,
                    },
                },
            )
        elif kind == "sideband.detach" and isinstance(reply_to, str):
            self.observers.discard(reply_to)
        elif kind == "sideband.client_event" and isinstance(message.get("text"), str):
            await self.receive(message["text"])

    async def _tell_observers(self, message: dict[str, Any]) -> None:
        """Send to every attached sideband connection.

        Overflow policy: a connection whose channel is full (it stopped reading) is
        detached and loses the events; the call itself never waits for it.
        """
        layer = get_channel_layer()
        for observer in list(self.observers):
            try:
                await layer.send(observer, message)
            except Exception:  # noqa: BLE001 - ChannelFull, or the layer is down
                logger.warning("sideband connection not keeping up; detached", extra=self._log)
                self.observers.discard(observer)

    async def _leave_control(self) -> None:
        if self.control_channel is None:
            return
        layer = get_channel_layer()
        await self._tell_observers({"type": "sideband.ended"})
        self.observers.clear()
        try:
            await layer.group_discard(call_group(self.id), self.control_channel)
        except Exception:  # noqa: BLE001 - groups expire on their own
            logger.info("leaving the call's control group failed", extra=self._log)

    # --- peer events -------------------------------------------------------------------------

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != EVENTS_CHANNEL or self.channel is not None:
            logger.info("ignoring a data channel", extra={**self._log, "label": channel.label})
            return
        self.channel = channel

        def on_message(message: str | bytes) -> None:
            self._spawn(self.receive(message), name="event-in")

        def on_open() -> None:
            self._channel_open.set()

        channel.on("message", on_message)
        channel.on("open", on_open)
        channel.on("close", lambda: self._spawn(self.end("client_closed", None), name="close"))
        if channel.readyState == "open":
            self._channel_open.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_microphone(track), name="microphone")
        else:
            # A client's camera is not used: read and drop it so it does not pile up.
            self._spawn(self._drain_track(track), name="drain-track")

    async def _read_microphone(self, track: MediaStreamTrack) -> None:
        """Feed the session ``MIC_BATCH_MS`` of microphone audio at a time.

        Browsers send 20 ms packets; handing them on two at a time halves the per-append
        work (resampling, the input task's wake-up, VAD bookkeeping) for 20 ms more of
        turn-detection latency.
        """
        resampler: StreamResampler | None = None
        rate = 0
        pending: list[np.ndarray] = []
        pending_samples = 0
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            session = self.session
            if session is None or session.closed:
                continue
            if frame.sample_rate != rate:
                rate = frame.sample_rate
                resampler = StreamResampler(rate, INPUT_RATE)
                pending, pending_samples = [], 0
            assert resampler is not None
            pending.append(mono_int16(frame))
            pending_samples += frame.samples
            if pending_samples * 1000 < MIC_BATCH_MS * rate:
                continue
            samples = pending[0] if len(pending) == 1 else np.concatenate(pending)
            pending, pending_samples = [], 0
            session.input.append_pcm(resampler.push(samples))

    async def _drain_track(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.info("peer connection state", extra={**self._log, "state": state})
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
        elif state in ("failed", "closed"):
            self._spawn(self.end("client_closed", None), name="peer-gone")

    def _on_video_frame(self, t_ms: float) -> None:
        if self.first_video_frame_at is None:
            self.first_video_frame_at = time.monotonic()

    async def _watch(self) -> None:
        """End a call that never connects, or whose peer overruns the SCTP receive window.

        aiortc reassembles data-channel messages without bounding them: a peer that ignores
        the window it was given (1 MiB) could grow this process's memory without limit. A
        compliant peer never takes the window below zero.
        """
        deadline = time.monotonic() + settings.RTC_CONNECT_TIMEOUT_S
        while not self.ended:
            await asyncio.sleep(SCTP_CHECK_S)
            if time.monotonic() > deadline and (
                self.connected_at is None or not self._channel_open.is_set()
            ):
                logger.info("call never connected; ending it", extra=self._log)
                await self.end("client_closed", None)
                return
            window = getattr(self.pc.sctp, "_advertised_rwnd", 0) if self.pc.sctp else 0
            if window < -SCTP_OVERRUN_BYTES:
                logger.warning("peer overran the data channel's window", extra=self._log)
                error = ProtocolError(
                    "The data channel's flow control was not respected; the call was closed.",
                    None,
                    "rate_limit_exceeded",
                    type="requests",
                )
                await self.end("client_flooding", error)
                return

    def _spawn(self, coro: Awaitable[Any], *, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("call task failed", exc_info=task.exception(), extra=self._log)

    # --- ending ------------------------------------------------------------------------------

    async def _close_from_session(self, code: int, reason: str) -> None:
        await self.end(reason, None)

    async def _end_from_watch(self, reason: str, close_code: int, error: ProtocolError) -> None:
        await self.end(reason, error)

    async def end(self, reason: str, error: ProtocolError | None) -> None:
        """End the call once (in its own task, so a caller's cancellation cannot cut it)."""
        if self._end_task is None:
            self._end_task = asyncio.ensure_future(self._end(reason, error))
        await asyncio.shield(self._end_task)

    async def _end(self, reason: str, error: ProtocolError | None) -> None:
        self.ended = True
        session = self.session
        if session is not None:
            if error is not None and self.outbox.running:
                await session.emit(
                    {"type": "error", "error": {**error.as_dict(), "event_id": None}}
                )
            await session.shutdown(reason=reason)
            await self.outbox.drain(DRAIN_TIMEOUT_S)
        self.outbox.closed = True
        await self._leave_control()
        if self.store is not None:
            await self.store.close()
        self.audio.stop()
        if self.video is not None:
            self.video.stop()
        try:
            await self.pc.close()
        except Exception:  # noqa: BLE001 - aiortc can fail closing a half-set-up peer
            # The rest of the clean-up must run whatever aiortc does (tasks, registry, row).
            logger.warning("closing the peer failed", exc_info=True, extra=self._log)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        from .registry import calls  # the registry imports this module

        calls().remove(self)
        if session is not None and self.started:
            live_sessions().unregister(self.session_id)
            await session_end_record(self.session_id, session.end_reason or reason)
            metrics.session_closed("webrtc", session.end_reason or reason)
        elif self.admitted:
            # Admitted (its row exists) but the offer or the session failed before it began.
            await session_end_record(self.session_id, "error")
        logger.info("webrtc call ended", extra={**self._log, "reason": reason})
