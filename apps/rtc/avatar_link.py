"""The avatar video of a WebSocket session, on a peer of its own (NavTalk's ``/iwebrtc``).

In NavTalk's flow the reply audio goes over the realtime WebSocket as ``response.audio.delta``
events and only the avatar's video goes over WebRTC. The session's ``WebSocketAudioSink``
tells its playback observers when each part starts playing (its pace clock: the page
plays the deltas back to back from the first one); each ``AvatarLink`` places the part's
phonemes at that moment on its video's media clock, so the lips move with what the page
plays, starting with the first audio delta.

``AvatarLinks`` lives with the session (in the process hosting it) and answers the
signaling that ``/iwebrtc`` consumers route to it over the channel layer, from any worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from django.conf import settings

from apps.avatar.life import Animator
from apps.avatar.lipsync import VisemeTrack, poses_from_audio
from apps.avatar.render.base import AvatarStream

from .ice import rtc_configuration
from .media import AvatarVideoTrack, MediaClock, negotiated_vp8
from .sdp import SdpRefused, candidate_check, describe_error

if TYPE_CHECKING:
    from apps.voice.tts.base import Phoneme

logger = logging.getLogger(__name__)

# Pages watching one session's avatar at once (a reload replaces its own link).
MAX_LINKS_PER_SESSION = 4
POSES_FPS = 50.0

Reply = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Sends a channel-layer message to a signaling consumer: ``(channel name, message)``."""


def candidates_of(sdp: str) -> list[dict[str, Any]]:
    """The ICE candidates of a (gathered) description, as browsers' ``RTCIceCandidateInit``.

    Each media section is read whole first: aiortc writes ``a=ice-ufrag`` after them.
    """
    found: list[dict[str, Any]] = []
    sections: list[list[str]] = []
    session_ufrag: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        elif sections:
            sections[-1].append(line)
        elif line.startswith("a=ice-ufrag:"):
            session_ufrag = line[len("a=ice-ufrag:") :]
    for index, lines in enumerate(sections):
        mid = next((x[len("a=mid:") :] for x in lines if x.startswith("a=mid:")), None)
        ufrag = next(
            (x[len("a=ice-ufrag:") :] for x in lines if x.startswith("a=ice-ufrag:")),
            session_ufrag,
        )
        for line in lines:
            if line.startswith("a=candidate:"):
                found.append(
                    {
                        "candidate": line[len("a=") :],
                        "sdpMid": mid,
                        "sdpMLineIndex": index,
                        "usernameFragment": ufrag,
                    }
                )
    return found


class AvatarLink:
    """One page's video peer showing a session's avatar."""

    def __init__(
        self,
        *,
        stream: AvatarStream,
        fps: int,
        ice_user: str,
        executor: Any,
        seed: int,
    ) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(user=ice_user))
        self.clock = MediaClock()
        self.animator = Animator(seed=seed)
        self._executor = executor
        self.video = AvatarVideoTrack(self.clock, self.animator, stream, fps=fps, executor=executor)
        self.pc.addTransceiver(self.video, direction="sendonly")
        self.closed = False

    async def offer(self) -> str:
        """Our offer with its candidates gathered (aiortc does not trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        """Apply the page's answer.

        Raises:
            SdpRefused: The answer is unusable.
        """
        if len(sdp) > settings.RTC_MAX_SDP_BYTES or not sdp.lstrip().startswith("v=0"):
            raise SdpRefused(
                "The answer is not an SDP description of a sane size.", code="invalid_answer"
            )
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds
            raise SdpRefused(
                f"The SDP answer could not be used: {describe_error(exc)}", code="invalid_answer"
            ) from None
        if negotiated_vp8(self.pc, self.video):
            self.video.encode_vp8()

    async def add_candidate(self, data: Any) -> None:
        """Add a trickled browser candidate (an empty one marks the end; ignored).

        Raises:
            SdpRefused: Not a candidate, or one aiortc cannot take.
        """
        if not isinstance(data, dict):
            raise SdpRefused("'candidate' must be an object.", code="invalid_candidate")
        text = data.get("candidate")
        if text == "" or text is None:
            return
        if not isinstance(text, str):
            raise SdpRefused("'candidate.candidate' must be a string.", code="invalid_candidate")
        candidate_check(text)
        mid = data.get("sdpMid")
        line = data.get("sdpMLineIndex")
        if (mid is not None and not isinstance(mid, str)) or (
            line is not None and (not isinstance(line, int) or isinstance(line, bool))
        ):
            raise SdpRefused(
                "'sdpMid'/'sdpMLineIndex' have the wrong type.", code="invalid_candidate"
            )
        try:
            candidate = candidate_from_sdp(text.removeprefix("a=").removeprefix("candidate:"))
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = line
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds
            raise SdpRefused(
                f"The candidate was refused: {describe_error(exc)}", code="invalid_candidate"
            ) from None

    # --- PlaybackObserver ------------------------------------------------------------------

    def played(
        self, samples: np.ndarray, sample_rate: int, phonemes: Sequence[Phoneme], at_s: float
    ) -> None:
        """Say the part's phonemes from when the page starts playing it."""
        if self.closed:
            return
        self.clock.start()
        start_ms = self.clock.ms_at(at_s)
        duration_ms = 1000.0 * len(samples) / sample_rate
        if phonemes:
            self.animator.speak(VisemeTrack(phonemes), start_ms=start_ms, duration_ms=duration_ms)
            return
        # No timings from the engine: the mouth follows the audio (computed off the loop).
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, lambda: poses_from_audio(samples, sample_rate, fps=POSES_FPS)
        )

        def place(done: asyncio.Future[list[Any]]) -> None:
            if not done.cancelled() and done.exception() is None and not self.closed:
                self.animator.speak(
                    VisemeTrack([]),
                    start_ms=start_ms,
                    duration_ms=duration_ms,
                    poses=done.result(),
                    poses_fps=POSES_FPS,
                )

        future.add_done_callback(place)

    def cleared(self) -> None:
        """Barge-in: the mouth eases closed."""
        if not self.closed:
            self.animator.interrupt(self.clock.now_ms())

    async def close(self) -> None:
        """Stop the video and close the peer."""
        if self.closed:
            return
        self.closed = True
        self.video.stop()
        await self.pc.close()


class AvatarLinks:
    """The avatar peers of one WebSocket session, answering routed ``/iwebrtc`` signaling.

    Messages arrive over the channel layer from signaling consumers on any worker; each
    names the consumer to answer (``reply_to``) and the license it authenticated. A link
    is keyed by that consumer, so a page that reconnects replaces its own link; at most
    ``MAX_LINKS_PER_SESSION`` pages watch at once (the oldest is closed for a new one).
    """

    def __init__(
        self,
        *,
        session_id: str,
        license_id: int,
        character_id: int | None,
        observers: list[Any],
        reply: Reply,
        fps: int,
        executor: Any,
        prepare: Callable[[int | None], Awaitable[AvatarStream]],
    ) -> None:
        self.session_id = session_id
        self.license_id = license_id
        self.character_id = character_id
        self._observers = observers
        self._reply = reply
        self._fps = fps
        self._executor = executor
        self._prepare = prepare
        self.links: dict[str, AvatarLink] = {}

    async def handle(self, message: dict[str, Any]) -> None:
        """One routed signaling message (``avatar.create|answer|candidate|close``)."""
        reply_to = message.get("reply_to")
        if not isinstance(reply_to, str):
            return
        if message.get("license_id") != self.license_id:
            # Another license's session: answered exactly as a session that does not exist.
            await self._reply(reply_to, {"type": "avatar.refused", "code": "session_not_found"})
            return
        kind = message.get("type")
        try:
            if kind == "avatar.create":
                await self._create(reply_to)
            elif kind == "avatar.answer":
                link = self._link(reply_to)
                await link.accept(str(message.get("sdp") or ""))
            elif kind == "avatar.candidate":
                await self._link(reply_to).add_candidate(message.get("candidate"))
            elif kind == "avatar.close":
                link = self.links.pop(reply_to, None)
                if link is not None:
                    await self._drop(link)
        except SdpRefused as exc:
            await self._reply(
                reply_to, {"type": "avatar.error", "code": exc.code, "message": exc.message}
            )

    def _link(self, reply_to: str) -> AvatarLink:
        link = self.links.get(reply_to)
        if link is None:
            raise SdpRefused(
                "No offer was made to this connection yet; send 'create' first.", code="no_offer"
            )
        return link

    async def _create(self, reply_to: str) -> None:
        old = self.links.pop(reply_to, None)
        if old is not None:
            await self._drop(old)
        while len(self.links) >= MAX_LINKS_PER_SESSION:
            oldest = next(iter(self.links))
            await self._drop(self.links.pop(oldest))
        stream = await self._prepare(self.character_id)
        link = AvatarLink(
            stream=stream,
            fps=self._fps,
            ice_user=self.session_id,
            executor=self._executor,
            seed=hash(self.session_id) & 0xFFFF,
        )
        self.links[reply_to] = link
        self._observers.append(link)
        sdp = await link.offer()
        await self._reply(
            reply_to,
            {"type": "avatar.offer", "sdp": sdp, "candidates": candidates_of(sdp)},
        )

    async def _drop(self, link: AvatarLink) -> None:
        if link in self._observers:
            self._observers.remove(link)
        await link.close()

    async def close(self, *, notify: bool = True) -> None:
        """The session ended: close every link and tell their pages."""
        links, self.links = self.links, {}
        for reply_to, link in links.items():
            await self._drop(link)
            if notify:
                try:
                    await self._reply(reply_to, {"type": "avatar.ended"})
                except Exception:  # noqa: BLE001 - the page may be gone; nothing to tell
                    logger.info("could not tell a page its avatar ended")
