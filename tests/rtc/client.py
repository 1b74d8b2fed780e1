"""A real aiortc client peer, as a browser running OpenAI's WebRTC quickstart would be.

It sends a microphone track (a scripted waveform, then silence, paced in real time),
receives the reply audio and the avatar video, and talks JSON over ``oai-events``.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000
FRAME = 960


class ScriptedMic(MediaStreamTrack):
    """Plays queued int16 48 kHz samples in 20 ms frames, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, np.int16)
        self._start: float | None = None
        self._index = 0

    def say(self, samples: np.ndarray) -> None:
        """Queue audio to send after what is queued."""
        self._pending = np.concatenate([self._pending, samples.astype(np.int16)])

    @property
    def busy(self) -> bool:
        """Whether queued audio is still being sent."""
        return len(self._pending) > 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._index * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pending[:FRAME]
        self._pending = self._pending[FRAME:]
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._index * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._index += 1
        return frame


def tone(seconds: float, hz: float = 300.0, level: float = 0.4) -> np.ndarray:
    """A loud tone (speech for the fake VAD, which goes by loudness)."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (level * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@dataclass
class Received:
    """What came back over the media tracks, with arrival times."""

    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    """(arrival monotonic time, int16 mono samples at 48 kHz) per frame."""
    audio_rtp: list[tuple[float, int, np.ndarray]] = field(default_factory=list)
    """The same with each frame's RTP timestamp: (arrival, pts at 48 kHz, samples)."""
    video: list[tuple[float, int, np.ndarray]] = field(default_factory=list)
    """(arrival time, pts in 90 kHz, the luma plane)."""


class ClientPeer:
    """One client call."""

    def __init__(self, *, video: bool = True, audio: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = ScriptedMic()
        if audio:
            self.pc.addTrack(self.mic)
        if video:
            self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self.received = Received()
        self._readers: list[asyncio.Task[None]] = []
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)

    def _on_message(self, message: str | bytes) -> None:
        self.events.append(json.loads(message))
        self._new.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "audio":
                data = frame.to_ndarray()
                channels = len(frame.layout.channels)
                mono = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
                self.received.audio.append((now, mono))
                self.received.audio_rtp.append((now, int(frame.pts or 0), mono))
            else:
                image = frame.to_ndarray(format="yuv420p")
                luma = image[: frame.height].copy()
                self.received.video.append((now, int(frame.pts or 0), luma))

    async def offer(self) -> str:
        """Our offer, ICE gathered."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        """Apply the server's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def send(self, event: dict[str, Any]) -> None:
        """Send one client event over ``oai-events``."""
        self.channel.send(json.dumps(event))

    async def next_event(self, kind: str, *, timeout_s: float = 15.0, after: int = 0) -> Any:
        """The first event of ``kind`` at index ``after`` or later (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events[after:]:
                if event["type"] == kind:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [e["type"] for e in self.events]
                raise TimeoutError(f"no {kind} within {timeout_s} s; got {kinds}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass

    def kinds(self) -> list[str]:
        """The types of the events received so far."""
        return [e["type"] for e in self.events]

    async def close(self) -> None:
        """Hang up from this side."""
        for reader in self._readers:
            reader.cancel()
        await self.pc.close()


@dataclass
class HttpAnswer:
    """An HTTP response: status, headers, body text."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def _post(url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return HttpAnswer(
                response.status, dict(response.headers), response.read().decode("utf-8")
            )
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers), exc.read().decode("utf-8"))


async def post(url: str, body: bytes | str, headers: dict[str, str]) -> HttpAnswer:
    """POST off the event loop (the client peer keeps running meanwhile)."""
    data = body.encode() if isinstance(body, str) else body
    return await asyncio.to_thread(_post, url, data, headers)


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type, as a browser's FormData."""
    boundary = "----rtcTestBoundary7MA4YWxkTrZu0gW"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"
