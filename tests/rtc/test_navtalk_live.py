"""NavTalk's avatar video over ``/iwebrtc`` against a real Daphne (scripted engines).

A realtime WebSocket session (``/api/realtime-api``, beta event names) carries the reply
audio as ``response.audio.delta`` events; a page opens ``/iwebrtc?userId=<license>``, asks
for that session's avatar (``create``), answers the server's offer with a real aiortc peer
and receives the video. The tests check the lips against the audio the page is sent (the
mouth starts moving within a frame or so of the first delta's arrival, and is still before
it and after the audio has played), the refusals (another license's session, no session,
malformed messages, all answered with ``error`` on a socket that stays open), and that the
video ends with the session.

The helpers here (the page, its video peer, the event socket, the mouth measurement) are
also used by ``test_sideband_live`` and ``tests/scale/test_rtc_scale_out``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from apps.avatar.look import full_look
from apps.avatar.render.base import CharacterSpec
from apps.avatar.render.drawn import prepare_character
from tests.helpers import free_port, manage, scripted_server_env, start_daphne, wait_http

pytestmark = pytest.mark.asyncio(loop_scope="function")

AVATAR_SIZE = 512
MOUTH_PAD = 10  # head sway and breathing move the mouth a few pixels
PCM16_24K_BYTES_PER_MS = 48  # the session's default output format: pcm16, 24 kHz, mono
# A frame whose mouth box changed by more than this (mean absolute luma) shows the lips
# moving: a new mouth pose changes it by 5-17; the idle avatar (breathing, sway) by under
# 0.5, with single frames up to ~2 while the video encoder adapts its bitrate.
MOVING = 4.0
# What the onset may lag the first delta's arrival: the frame for that media time is
# rendered when due (one 40 ms period at most), VP8-encoded, sent over loopback, decoded.
ONSET_MAX_S = 0.15
# The frame showing the first phoneme cannot arrive much before the delta that carries
# its audio (both leave the server at the same moment; the video is encoded on the way).
ONSET_MIN_S = -0.04
# After the audio has played the lips close (RELEASE_MS) and the head calms down.
SETTLE_S = 0.3


# --- the server ---------------------------------------------------------------------------------


class Server:
    """One Daphne process on the test settings, with two licenses (``key``, ``other_key``)."""

    def __init__(self, var_dir: Path, **extra_env: str) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir, **extra_env)
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log", delete=False)
        self.proc: subprocess.Popen[str] | None = None
        self.key = ""
        self.other_key = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        """Migrate, seed and create the licenses (once per database)."""
        manage(self.env, "migrate", "--noinput", "-v0")
        # Each command is a Django start-up of a few seconds: run them side by side.
        with ThreadPoolExecutor(3) as pool:
            seeded = pool.submit(manage, self.env, "seed_demo")  # the voice catalogue
            key = pool.submit(self._license, "rtc-navtalk")
            other_key = pool.submit(self._license, "rtc-navtalk-other")
            seeded.result()
            self.key, self.other_key = key.result(), other_key.result()
        assert self.key and self.other_key and self.key != self.other_key

    def _license(self, name: str) -> str:
        created = manage(self.env, "createlicense", name, "--max-sessions", "20")
        return created.stdout.splitlines()[-1].strip()

    def start(self) -> None:
        self.proc = start_daphne(self.env, self.port, self.log)
        try:
            wait_http(self.base + "/healthz")
        except Exception:
            self.stop()
            raise RuntimeError(f"daphne did not start:\n{self.output()[-5000:]}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def close(self) -> None:
        self.stop()
        if os.environ.get("RTC_LIVE_SHOW_LOG"):
            print(self.output()[-20_000:])
        os.unlink(self.log.name)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("rtc-navtalk"))
    try:
        srv.prepare()
        srv.start()
        yield srv
    finally:
        srv.close()


# --- sockets ------------------------------------------------------------------------------------


async def until(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Wait for ``check`` to hold (data to arrive), failing with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class EventSocket:
    """A WebSocket read in the background: JSON messages with their arrival times.

    ``closed`` is set (with ``close_code``) when the server closes it.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._new = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> EventSocket:
        return cls(await ws_connect(url, additional_headers=headers or {}, max_size=None))

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.events.append(json.loads(message))
                self.arrivals.append(time.monotonic())
                self._new.set()
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else None
            self.closed.set()
            self._new.set()

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(event if isinstance(event, str | bytes) else json.dumps(event))

    def kinds(self, after: int = 0) -> list[str]:
        return [str(e.get("type")) for e in self.events[after:]]

    def index(self, kind: str, after: int = 0) -> int:
        for i in range(after, len(self.events)):
            if self.events[i].get("type") == kind:
                return i
        raise AssertionError(f"no {kind} after {after}; got {self.kinds()}")

    async def next(self, kind: str, *, after: int = 0, timeout_s: float = 15.0) -> dict[str, Any]:
        """The first event of ``kind`` at index ``after`` or later (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events[after:]:
                if event.get("type") == kind:
                    return event
            left = deadline - time.monotonic()
            if left <= 0 or self.closed.is_set():
                state = f"closed {self.close_code}" if self.closed.is_set() else "open"
                raise AssertionError(f"no {kind} within {timeout_s} s ({state}): {self.events}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass

    async def reply(self, message: Any, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send ``message`` and return the next message the server sends."""
        after = len(self.events)
        await self.send(message)
        deadline = time.monotonic() + timeout_s
        while len(self.events) <= after:
            assert not self.closed.is_set(), f"closed ({self.close_code}) after {message!r}"
            self._new.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"no reply within {timeout_s} s to {message!r}"
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass
        return self.events[after]

    async def wait_closed(self, timeout_s: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout_s)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def user_says(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


async def navtalk_session(server: Server, key: str | None = None) -> tuple[EventSocket, str]:
    """A NavTalk realtime WebSocket session (default drawn character) and its id."""
    rt = await EventSocket.open(f"{server.ws}/api/realtime-api?license={key or server.key}")
    created = await rt.next("session.created", timeout_s=30)
    session_id = created["session"]["id"]
    assert isinstance(session_id, str) and session_id.startswith("sess_"), created
    return rt, session_id


# --- the page's video peer ----------------------------------------------------------------------


class VideoPeer:
    """The page's ``RTCPeerConnection``: receives the avatar video (arrival, pts, luma)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video: list[tuple[float, int, np.ndarray]] = []
        self.ended = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.ended.set()
                return
            image = frame.to_ndarray(format="yuv420p")
            self.video.append((time.monotonic(), int(frame.pts or 0), image[: frame.height].copy()))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.pc.close()


async def watch(
    page: EventSocket, session_id: str, *, timeout_s: float = 15.0
) -> tuple[VideoPeer, dict[str, Any]]:
    """``create`` → offer (+ its candidates) → aiortc answer; returns the peer and the offer."""
    after = len(page.events)
    await page.send({"type": "create", "targetSessionId": session_id})
    offer = await page.next("offer", after=after, timeout_s=timeout_s)
    assert offer["targetSessionId"] == session_id, offer
    sdp = offer["sdp"]
    assert isinstance(sdp, dict) and sdp["type"] == "offer", offer
    assert sdp["sdp"].startswith("v=0") and "m=video " in sdp["sdp"], sdp["sdp"][:300]
    # The offer's candidates are also sent one by one, as a browser's RTCIceCandidateInit.
    lines = [
        line.removeprefix("a=")
        for line in sdp["sdp"].splitlines()
        if line.startswith("a=candidate:")
    ]
    assert lines, sdp["sdp"]
    i_offer = page.events.index(offer, after)
    await until(
        lambda: page.kinds(i_offer).count("iceCandidate") >= len(lines), "the offer's candidates"
    )
    trickled = [e for e in page.events[i_offer:] if e.get("type") == "iceCandidate"]
    assert sorted(e["candidate"]["candidate"] for e in trickled) == sorted(lines), trickled
    for event in trickled:
        assert event["targetSessionId"] == session_id, event
        assert set(event["candidate"]) >= {
            "candidate",
            "sdpMid",
            "sdpMLineIndex",
            "usernameFragment",
        }, event
        assert event["candidate"]["sdpMLineIndex"] == 0, event
    peer = VideoPeer()
    answer = await peer.answer(sdp["sdp"])
    await page.send(
        {"type": "answer", "targetSessionId": session_id, "sdp": {"type": "answer", "sdp": answer}}
    )
    return peer, offer


# --- the mouth ----------------------------------------------------------------------------------


@cache
def mouth_box() -> tuple[int, int, int, int]:
    """(left, top, right, bottom) around every mouth pose of the default drawn character."""
    character = prepare_character(
        CharacterSpec(slug="default", look=full_look({})), width=AVATAR_SIZE, height=AVATAR_SIZE
    )
    boxes = [
        (m.x, m.y, m.x + m.sprite.width, m.y + m.sprite.height) for m in character.mouths.values()
    ]
    return (
        max(0, min(b[0] for b in boxes) - MOUTH_PAD),
        max(0, min(b[1] for b in boxes) - MOUTH_PAD),
        min(AVATAR_SIZE, max(b[2] for b in boxes) + MOUTH_PAD),
        min(AVATAR_SIZE, max(b[3] for b in boxes) + MOUTH_PAD),
    )


def mouth_motion(video: list[tuple[float, int, np.ndarray]]) -> list[tuple[float, float]]:
    """(arrival, mean absolute luma change in the mouth box since the previous frame)."""
    left, top, right, bottom = mouth_box()
    out = []
    for (_, _, before), (t, _, after) in zip(video, video[1:], strict=False):
        a = before[top:bottom, left:right].astype(np.int16)
        b = after[top:bottom, left:right].astype(np.int16)
        out.append((t, float(np.abs(b - a).mean())))
    return out


def motion_in(motion: list[tuple[float, float]], since: float, until_t: float) -> list[float]:
    return [change for t, change in motion if since <= t <= until_t]


def check_frames(video: list[tuple[float, int, np.ndarray]]) -> None:
    """512x512 luma, increasing pts."""
    assert video and video[0][2].shape == (AVATAR_SIZE, AVATAR_SIZE), video[:1]
    pts = [p for _, p, _ in video]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), pts[:50]


class Reply:
    """One reply's audio as the page got it over the realtime WebSocket."""

    def __init__(self, rt: EventSocket, after: int, delta_kind: str) -> None:
        deltas = [i for i in range(after, len(rt.events)) if rt.events[i]["type"] == delta_kind]
        assert deltas, rt.kinds(after)
        self.first_delta_at = rt.arrivals[deltas[0]]
        self.last_delta_at = rt.arrivals[deltas[-1]]
        self.audio_bytes = sum(len(base64.b64decode(rt.events[i]["delta"])) for i in deltas)
        self.audio_s = self.audio_bytes / PCM16_24K_BYTES_PER_MS / 1000.0
        # The page plays the deltas back to back from the first one.
        self.audio_end_at = self.first_delta_at + self.audio_s


def lips_follow_the_reply(
    video: list[tuple[float, int, np.ndarray]], reply: Reply, asked_at: float, label: str
) -> dict[str, float]:
    """Assert the mouth is still, then moves from the first delta until the audio ends.

    Returns the measured numbers (onset and stop offsets in seconds, mean changes).
    """
    check_frames(video)
    motion = mouth_motion(video)
    first_frame = video[0][0]
    before = motion_in(motion, first_frame + 0.5, reply.first_delta_at - 0.001)
    speaking = motion_in(motion, reply.first_delta_at, reply.audio_end_at)
    after = motion_in(motion, reply.audio_end_at + SETTLE_S, float("inf"))
    # The last third of the audio is the reply's last sentence (its own audio part).
    last_third = motion_in(motion, reply.audio_end_at - reply.audio_s / 3, reply.audio_end_at)
    assert len(before) >= 20 and len(after) >= 20, (len(before), len(after))
    assert len(speaking) >= 0.8 * 25 * reply.audio_s, (len(speaking), reply.audio_s)
    moving = [t for t, change in motion if change >= MOVING]
    assert moving, "the mouth never moved"
    numbers = {
        "onset_s": moving[0] - reply.first_delta_at,
        "stop_s": moving[-1] - reply.audio_end_at,
        "audio_s": reply.audio_s,
        "speaking_mean": float(np.mean(speaking)),
        "last_third_mean": float(np.mean(last_third)),
        "quiet_max": max(before + after),
        "first_delta_after_ask_s": reply.first_delta_at - asked_at,
    }
    print(f"\n[{label}] " + ", ".join(f"{k}={v:.3f}" for k, v in numbers.items()))
    # Still before the reply (including between asking and the first delta) and after it.
    assert max(before) < MOVING, ("moving before the first delta", sorted(before)[-5:], numbers)
    assert max(after) < MOVING, ("moving after the audio ended", sorted(after)[-5:], numbers)
    assert float(np.median(before + after)) < 0.5, sorted(before + after)[-10:]
    # Moving from the first delta's arrival to the end of the audio.
    onset_s = numbers["onset_s"]
    assert ONSET_MIN_S <= onset_s <= ONSET_MAX_S, ("mouth onset vs first delta", numbers)
    assert -0.2 <= numbers["stop_s"] <= SETTLE_S, ("mouth stop vs end of audio", numbers)
    assert numbers["speaking_mean"] > 2.0, numbers
    assert numbers["last_third_mean"] > 2.0, ("the last sentence was not mouthed", numbers)
    return numbers


# --- 1. the video, and the lips against the WebSocket's audio ----------------------------------


async def test_iwebrtc_video_lips_follow_the_websocket_audio(server: Server) -> None:
    rt, session_id = await navtalk_session(server)
    page = await EventSocket.open(f"{server.ws}/iwebrtc?userId={server.key}")
    peer: VideoPeer | None = None
    try:
        created_at = time.monotonic()
        peer, _offer = await watch(page, session_id)
        offer_s = time.monotonic() - created_at
        # Two seconds of the idle avatar first.
        await until(lambda: len(peer.video) >= 50, "50 video frames", 20)
        assert peer.pc.connectionState == "connected", peer.pc.connectionState
        assert not [e for e in page.events if e.get("type") == "error"], page.events

        after = len(rt.events)
        asked_at = time.monotonic()
        await rt.send(user_says("Hello there. It is a fine day"))
        await rt.send({"type": "response.create"})
        done = await rt.next("response.done", after=after, timeout_s=30)
        assert done["response"]["status"] == "completed", done
        kinds = rt.kinds(after)
        assert "response.audio.delta" in kinds and "response.output_audio.delta" not in kinds
        reply = Reply(rt, after, "response.audio.delta")
        transcript = done["response"]["output"][0]["content"][0]["transcript"]
        assert transcript == "You said: Hello there. It is a fine day", transcript
        # FakeTts: 60 ms a character (sentences split; spaces between them are not spoken).
        assert abs(reply.audio_s - 0.06 * len(transcript)) <= 0.15, (reply.audio_s, transcript)
        await until(
            lambda: peer.video[-1][0] > reply.audio_end_at + SETTLE_S + 1.0,
            "video after the reply",
            reply.audio_s + 15,
        )
        print(f"\n[navtalk] offer {offer_s * 1000:.0f} ms after create")
        lips_follow_the_reply(peer.video, reply, asked_at, "navtalk")
    finally:
        if peer is not None:
            await peer.close()
        await page.close()
        await rt.close()


# --- 2. refusals ---------------------------------------------------------------------------------


def assert_page_error(event: dict[str, Any], code: str) -> None:
    assert event.get("type") == "error", event
    assert event.get("code") == code, event
    assert isinstance(event.get("message"), str) and event["message"], event


async def test_iwebrtc_refuses_other_sessions_and_bad_messages(server: Server) -> None:
    rt, session_id = await navtalk_session(server)
    other = await EventSocket.open(f"{server.ws}/iwebrtc?userId={server.other_key}")
    stranger = await EventSocket.open(f"{server.ws}/iwebrtc?userId={server.key}")
    page = await EventSocket.open(f"{server.ws}/iwebrtc?userId={server.key}")
    peer: VideoPeer | None = None
    try:
        # Another license naming this session, and a made-up session of this license: the
        # same answer, no offer (the made-up one after the page's reply timeout, 5 s).
        started = time.monotonic()
        made_up = "sess_" + "N0such5ession" * 2
        refused, unknown = await asyncio.gather(
            other.reply({"type": "create", "targetSessionId": session_id}, timeout_s=8),
            stranger.reply({"type": "create", "targetSessionId": made_up}, timeout_s=8),
        )
        assert_page_error(refused, "session_not_found")
        assert refused["targetSessionId"] == session_id, refused
        assert_page_error(unknown, "session_not_found")
        assert unknown["targetSessionId"] == made_up, unknown
        assert time.monotonic() - started < 7.5
        # Nothing else was coming: the next answer on each socket is to the next message.
        for sock, target in ((other, session_id), (stranger, made_up)):
            probe = await sock.reply({"type": "hello", "targetSessionId": target})
            assert_page_error(probe, "invalid_type")
            assert "offer" not in sock.kinds(), sock.events
            assert not sock.closed.is_set()
        # The refused license may not drive the session's link either.
        answer = {"type": "answer", "sdp": {"type": "answer", "sdp": "v=0\r\n"}}
        candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
        for message in (answer, {"type": "iceCandidate", "candidate": candidate}):
            refused = await other.reply({**message, "targetSessionId": session_id})
            assert_page_error(refused, "session_not_found")

        # Malformed messages: an error each, and the socket stays open.
        bad_sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video garbage\r\n"
        steps: list[tuple[Any, str]] = [
            ("this is not json", "invalid_json"),
            (b"\x00\x01binary", "invalid_message"),
            ("[1, 2, 3]", "invalid_message"),
            ({"type": "create"}, "invalid_target"),
            ({"type": "create", "targetSessionId": "not-a-session"}, "invalid_target"),
            ({"type": "hello", "targetSessionId": session_id}, "invalid_target"),
            (
                {"type": "answer", "targetSessionId": session_id, "sdp": {"type": "answer"}},
                "invalid_target",
            ),
            ({"type": "iceCandidate", "targetSessionId": session_id}, "invalid_target"),
        ]
        for message, code in steps:
            assert_page_error(await page.reply(message), code)
        assert not page.closed.is_set()

        # Now an offer; then bad answers and candidates for it.
        after = len(page.events)
        await page.send({"type": "create", "targetSessionId": session_id})
        first_offer = await page.next("offer", after=after)
        await until(
            lambda: (
                page.kinds(after).count("iceCandidate")
                >= first_offer["sdp"]["sdp"].count("a=candidate:")
            ),
            "the offer's candidates",
        )
        target = {"targetSessionId": session_id}
        steps = [
            ({"type": "hello", **target}, "invalid_type"),
            ({"type": "answer", **target, "sdp": {"type": "answer", "sdp": 42}}, "invalid_sdp"),
            ({"type": "answer", **target, "sdp": {"type": "answer", "sdp": "garbage"}}, ""),
            ({"type": "answer", **target, "sdp": {"type": "answer", "sdp": bad_sdp}}, ""),
            ({"type": "iceCandidate", **target, "candidate": "x"}, "invalid_candidate"),
            (
                {"type": "iceCandidate", **target, "candidate": {"candidate": "not one"}},
                "invalid_candidate",
            ),
            (
                {
                    "type": "iceCandidate",
                    **target,
                    "candidate": {"candidate": "candidate:garbage", "sdpMLineIndex": 0},
                },
                "invalid_candidate",
            ),
            (
                {
                    "type": "iceCandidate",
                    **target,
                    "candidate": {
                        "candidate": "candidate:1 1 udp 1 1.2.3.4 9 typ host",
                        "sdpMLineIndex": "zero",
                    },
                },
                "",
            ),
        ]
        codes = []
        for message, code in steps:
            event = await page.reply(message)
            codes.append(event.get("code"))
            if code:
                assert_page_error(event, code)
            else:
                assert event.get("type") == "error" and event.get("code"), (message, event)
                assert event.get("code") != "session_not_found", (message, event)
        print(f"\n[navtalk refusals] after the offer: {codes}")
        assert not page.closed.is_set() and page.kinds(after).count("offer") == 1

        # A valid create still gets an offer, and its answer gets video.
        peer, offer = await watch(page, session_id)
        assert offer["sdp"]["sdp"] != first_offer["sdp"]["sdp"]
        await until(lambda: len(peer.video) >= 10, "video after the refusals", 20)
        check_frames(peer.video)
        # The session's own socket saw none of this.
        assert "error" not in rt.kinds(), rt.events
    finally:
        if peer is not None:
            await peer.close()
        for sock in (page, stranger, other, rt):
            await sock.close()


# --- 3. the video ends with the session ---------------------------------------------------------


async def test_closing_the_session_ends_its_video(server: Server) -> None:
    rt, session_id = await navtalk_session(server)
    page = await EventSocket.open(f"{server.ws}/iwebrtc?userId={server.key}")
    peer: VideoPeer | None = None
    try:
        peer, _ = await watch(page, session_id)
        await until(lambda: len(peer.video) >= 10, "video frames", 20)
        after = len(page.events)
        closed_at = time.monotonic()
        await rt.close()
        ended = await page.next("error", after=after, timeout_s=10)
        told_s = time.monotonic() - closed_at
        assert_page_error(ended, "session_ended")
        assert ended["targetSessionId"] == session_id, ended
        await until(
            lambda: peer.pc.connectionState == "closed" or peer.ended.is_set(),
            "the video peer to close",
            35,
        )
        gone_s = time.monotonic() - closed_at
        print(
            f"\n[navtalk end] session_ended after {told_s * 1000:.0f} ms, video gone after "
            f"{gone_s * 1000:.0f} ms ({peer.pc.connectionState})"
        )
        # No more frames once it has ended.
        count = len(peer.video)
        ended_at = page.arrivals[page.events.index(ended)]
        frames_after = [t - ended_at for t, _, _ in peer.video if t > ended_at + 0.5]
        assert not frames_after, frames_after[:5]
        # The page's socket stays open; the session is gone for good.
        assert not page.closed.is_set()
        again = await page.reply({"type": "create", "targetSessionId": session_id}, timeout_s=8)
        assert_page_error(again, "session_not_found")
        assert len(peer.video) == count
    finally:
        if peer is not None:
            await peer.close()
        await page.close()
        await rt.close()
