"""A call's outgoing media: the reply's audio track and the avatar's video track, one clock.

Both tracks stamp their frames from one ``MediaClock`` (milliseconds since the call's media
started): audio sample ``n`` is due at ``n / 48`` ms, the video frame for ``t`` ms shows
the avatar's state at ``t``. Each ``recv`` returns when its frame is due, so aiortc sends
in real time, and its RTCP sender reports map both streams' RTP time to the same wall
clock: the browser lines them up, and a mouth placed at the audio's media time moves with
what is heard.

``ReplyAudioTrack`` holds the reply's samples in a bounded buffer (the sink waits for room,
so a response can run at most ``lead`` ahead of what is played) and plays silence when
there is none. It knows what was played of each tagged part, which is what barge-in
truncates to.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from apps.avatar.life import Animator
from apps.avatar.render.base import AvatarStream, I420Frame

AUDIO_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = AUDIO_RATE * FRAME_MS // 1000
_AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
VIDEO_CLOCK_HZ = 90_000
_VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)
# A video frame later than this many frame periods is skipped rather than sent late.
VIDEO_MAX_LATE_FRAMES = 2
_SILENCE = np.zeros(FRAME_SAMPLES, np.int16)
OPUS_BIT_RATE = 32_000


class MediaClock:
    """Milliseconds since the call's media started (the first track to ask starts it)."""

    def __init__(self) -> None:
        self._t0: float | None = None

    def start(self) -> float:
        """Start the clock if nobody has; return its origin (``time.monotonic``)."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._t0

    @property
    def started(self) -> bool:
        """Whether a track has started the clock."""
        return self._t0 is not None

    def now_ms(self) -> float:
        """Media time now (0 before the clock starts)."""
        return 0.0 if self._t0 is None else (time.monotonic() - self._t0) * 1000.0

    def ms_at(self, at_s: float) -> float:
        """Media time at ``at_s`` (a ``time.monotonic()`` value); starts the clock if needed."""
        return (at_s - self.start()) * 1000.0


@dataclass(slots=True)
class _Segment:
    samples: np.ndarray
    tag: Hashable
    offset: int = 0


PlayedCallback = Callable[[Hashable, int], None]
"""Called as a tagged part's samples are played: ``(tag, samples played in this frame)``."""


class ReplyAudioTrack(MediaStreamTrack):
    """The reply audio: 20 ms mono frames at 48 kHz, silence when nothing is queued.

    Overflow policy: ``push`` never refuses, so the buffer is bounded by its single
    producer, the sink, which waits in ``wait_for_room`` until less than its lead is
    queued before pushing the next slice.
    """

    kind = "audio"

    def __init__(self, clock: MediaClock, on_played: PlayedCallback | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.on_played = on_played
        self._segments: deque[_Segment] = deque()
        self._queued = 0
        self._next_frame: int | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._opus = _opus_encoder()
        self._encoded: deque[av.Packet] = deque()

    # --- the producer side (the sink) ------------------------------------------------------

    @property
    def queued_ms(self) -> float:
        """Audio waiting to be played."""
        return 1000.0 * self._queued / AUDIO_RATE

    def next_play_ms(self) -> float:
        """Media time at which a sample pushed now starts to play."""
        if self._next_frame is None:
            # Not started yet: the first frame goes out when the connection is up.
            start_ms = self.clock.now_ms()
        else:
            start_ms = max(self._next_frame * FRAME_MS, self.clock.now_ms())
        return start_ms + self.queued_ms

    async def wait_for_room(self, lead_ms: float) -> None:
        """Return once less than ``lead_ms`` of audio is queued."""
        while self.queued_ms >= lead_ms and self.readyState == "live":
            self._room.clear()
            await self._room.wait()

    def push(self, samples: np.ndarray, tag: Hashable) -> float:
        """Queue int16 mono 48 kHz samples; returns the media time they start playing."""
        start_ms = self.next_play_ms()
        if len(samples):
            self._segments.append(_Segment(samples, tag))
            self._queued += len(samples)
        return start_ms

    def clear(self) -> dict[Hashable, int]:
        """Drop everything queued; returns the samples dropped per tag."""
        dropped: dict[Hashable, int] = {}
        for segment in self._segments:
            left = len(segment.samples) - segment.offset
            dropped[segment.tag] = dropped.get(segment.tag, 0) + left
        self._segments.clear()
        self._queued = 0
        self._room.set()
        return dropped

    def holds(self, tag: Hashable) -> bool:
        """Whether samples of ``tag`` are still queued."""
        return any(segment.tag == tag for segment in self._segments)

    # --- the consumer side (aiortc's sender) -----------------------------------------------

    def _take(self) -> np.ndarray:
        if not self._queued:
            return _SILENCE
        out = np.empty(FRAME_SAMPLES, np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self._segments:
            segment = self._segments[0]
            n = min(FRAME_SAMPLES - filled, len(segment.samples) - segment.offset)
            out[filled : filled + n] = segment.samples[segment.offset : segment.offset + n]
            segment.offset += n
            filled += n
            self._queued -= n
            if segment.offset >= len(segment.samples):
                self._segments.popleft()
            if self.on_played is not None:
                self.on_played(segment.tag, n)
        out[filled:] = 0
        self._room.set()
        return out

    async def recv(self) -> av.Packet:
        """The next 20 ms of Opus, when it is due on the media clock."""
        if self.readyState != "live":
            raise MediaStreamError
        t0 = self.clock.start()
        if self._next_frame is None:
            # Frame numbers count from the clock's origin, so audio and video share it.
            self._next_frame = int((time.monotonic() - t0) * 1000.0 // FRAME_MS)
        index = self._next_frame
        wait_s = t0 + index * FRAME_MS / 1000.0 - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        if self.readyState != "live":
            raise MediaStreamError
        self._next_frame = index + 1
        samples = self._take()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * FRAME_SAMPLES
        frame.time_base = _AUDIO_TIME_BASE
        # Encoded here, on the loop: a 20 ms Opus frame takes ~0.25 ms, less than the
        # executor hop aiortc would otherwise make for it (thread wake-ups, GIL hand-offs
        # and a loop wake, 50 times a second per call), the same trade as the session's
        # inline decoding of small appends. aiortc then only packetizes.
        for packet in self._opus.encode(frame):
            packet.time_base = _AUDIO_TIME_BASE
            self._encoded.append(packet)
        if self._encoded:
            return self._encoded.popleft()
        return await self.recv()  # the encoder's first frame fills its look-ahead

    def stop(self) -> None:
        """End the track (the call ends); a producer waiting for room is released."""
        super().stop()
        self._room.set()


def _opus_encoder() -> Any:
    """An Opus encoder for one call's reply: mono speech in 20 ms packets.

    Any WebRTC peer decodes mono Opus within its stereo ``opus/48000/2`` stream.
    """
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = OPUS_BIT_RATE
    codec.time_base = _AUDIO_TIME_BASE
    codec.options = {"frame_duration": str(FRAME_MS), "application": "voip"}
    codec.open()
    return codec


def i420_to_video_frame(image: I420Frame) -> av.VideoFrame:
    """Copy I420 planes into a ``yuv420p`` frame for an encoder (no colour conversion)."""
    height, width = image.y.shape
    frame = av.VideoFrame(width, height, "yuv420p")
    planes = (image.y, image.u, image.v)
    if all(p.line_size == a.shape[1] for p, a in zip(frame.planes, planes, strict=True)):
        for plane, array in zip(frame.planes, planes, strict=True):
            plane.update(np.ascontiguousarray(array))
        return frame
    # Padded rows (odd sizes): let PyAV lay the planes out.
    packed = np.concatenate([image.y.ravel(), image.u.ravel(), image.v.ravel()])
    return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")


class Vp8Encoder:
    """libvpx tuned for a rendered avatar, encoding in the render thread.

    aiortc's own VP8 settings are made for cameras: temporal noise reduction
    (``noise-sensitivity 4``) and an adaptive speed (``cpu-used -6``). A rendered avatar has
    no sensor noise and, between a blink and a word, most of its macroblocks do not change:
    no denoising, the fastest real-time speed (16) and skipping macroblocks that barely
    changed (``static-thresh 100``) encode a 512×512 frame in ~0.7 instead of 3.8 ms, at a
    PSNR of 53–56 dB (median; the mouth region 50 dB), 210 instead of 340 kbit/s
    (measured on a speaking drawn character). Encoding here also saves aiortc a second
    executor hop per frame; aiortc only packetizes what it gets.

    A keyframe starts the stream and then comes every ``KEYFRAME_S``: a pre-encoded track
    cannot see the receiver's keyframe requests (PLI), and lost packets are otherwise
    repaired by aiortc's retransmissions (NACK).
    """

    KEYFRAME_S = 3

    def __init__(self, *, width: int, height: int, fps: int, bitrate: int = 600_000) -> None:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width = width
        codec.height = height
        codec.bit_rate = bitrate
        codec.pix_fmt = "yuv420p"
        codec.time_base = _VIDEO_TIME_BASE
        codec.gop_size = fps * self.KEYFRAME_S
        codec.qmin = 2
        codec.qmax = 56
        codec.options = {
            "bufsize": str(bitrate),
            "cpu-used": "16",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "noise-sensitivity": "0",
            "overshoot-pct": "15",
            "undershoot-pct": "100",
            "static-thresh": "100",
            "partitions": "0",
        }
        codec.thread_count = 1
        self.codec = codec

    def encode(self, image: I420Frame, pts: int) -> list[av.Packet]:
        """Encode one frame (pts in the 90 kHz clock); usually one packet, maybe none."""
        frame = i420_to_video_frame(image)
        frame.pts = pts
        frame.time_base = _VIDEO_TIME_BASE
        packets = list(self.codec.encode(frame))
        for packet in packets:
            packet.pts = pts
            packet.time_base = _VIDEO_TIME_BASE
        return packets


def negotiated_vp8(pc: Any, track: MediaStreamTrack) -> bool:
    """Whether the sender of ``track`` sends VP8 (the codec aiortc picked is the first).

    aiortc keeps the negotiated codecs on the transceiver (``_codecs``, pinned aiortc 1.16):
    the sender encodes with the first one.
    """
    for transceiver in pc.getTransceivers():
        if transceiver.sender.track is track:
            codecs = getattr(transceiver, "_codecs", None) or []
            return bool(codecs) and codecs[0].mimeType.lower() == "video/vp8"
    return False


class AvatarVideoTrack(MediaStreamTrack):
    """The avatar at ``fps``, each frame rendered for its time on the media clock.

    Rendering runs in ``executor`` (never on the event loop); a frame that would go out more
    than ``VIDEO_MAX_LATE_FRAMES`` periods late is skipped (video may drop, audio may not).
    """

    kind = "video"

    def __init__(
        self,
        clock: MediaClock,
        animator: Animator,
        stream: AvatarStream,
        *,
        fps: int,
        executor: Executor,
        on_frame: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.animator = animator
        self.stream = stream
        self.fps = fps
        self.executor = executor
        self.on_frame = on_frame
        self._next_frame: int | None = None
        self.encoder: Vp8Encoder | None = None
        """Set when the call negotiated VP8: frames leave this track encoded."""

    def encode_vp8(self) -> None:
        """Hand aiortc encoded VP8 from now on (the negotiated codec is VP8)."""
        height, width = self.stream_size
        self.encoder = Vp8Encoder(width=width, height=height, fps=self.fps)

    @property
    def stream_size(self) -> tuple[int, int]:
        """(height, width) of the frames, from a first render at time 0."""
        if not hasattr(self, "_size"):
            first = self.stream.render(self.animator.state(0.0))
            self._size = (first.height, first.width)
        return self._size

    def _produce(self, t_ms: float, pts: int) -> av.VideoFrame | list[av.Packet]:
        image = self.stream.render(self.animator.state(t_ms))
        if self.encoder is not None:
            return self.encoder.encode(image, pts)
        frame = i420_to_video_frame(image)
        frame.pts = pts
        frame.time_base = _VIDEO_TIME_BASE
        return frame

    async def recv(self) -> av.VideoFrame | av.Packet:
        """The next frame (or its VP8 packet), when it is due on the media clock."""
        loop = asyncio.get_running_loop()
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            t0 = self.clock.start()
            period_s = 1.0 / self.fps
            due = int((time.monotonic() - t0) / period_s)
            if self._next_frame is None or due - self._next_frame > VIDEO_MAX_LATE_FRAMES:
                self._next_frame = due
            index = self._next_frame
            wait_s = t0 + index * period_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if self.readyState != "live":
                raise MediaStreamError
            self._next_frame = index + 1
            t_ms = index * 1000.0 / self.fps
            pts = round(t_ms * VIDEO_CLOCK_HZ / 1000.0)
            out = await loop.run_in_executor(self.executor, self._produce, t_ms, pts)
            if self.on_frame is not None:
                self.on_frame(t_ms)
            if isinstance(out, av.VideoFrame):
                return out
            if out:
                # libvpx without lag gives one packet per frame.
                return out[0]
            # The rate control dropped this frame: go on with the next one.
