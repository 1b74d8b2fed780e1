"""Writing frames and audio to a WebM file (VP8 + Opus), for ``render_avatar`` and benches."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from apps.core.audio import resample

from .render.base import I420Frame

OPUS_RATE = 48_000
OPUS_FRAME = 960  # 20 ms


def i420_video_frame(frame: I420Frame) -> av.VideoFrame:
    """Wrap I420 planes for an encoder (one copy into a contiguous buffer, no conversion)."""
    height, width = frame.y.shape
    packed = np.concatenate([frame.y.ravel(), frame.u.ravel(), frame.v.ravel()])
    return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")


def write_webm(
    path: Path,
    frames: Iterable[I420Frame],
    *,
    fps: int,
    audio: np.ndarray,
    sample_rate: int,
    audio_start_ms: float = 0.0,
    bitrate: int = 1_500_000,
) -> int:
    """Encode ``frames`` (VP8) and ``audio`` (int16 mono, Opus) into ``path``.

    Returns:
        The number of video frames written.
    """
    with av.open(str(path), mode="w", format="webm") as container:
        video = container.add_stream("libvpx", rate=fps)
        video.pix_fmt = "yuv420p"
        video.bit_rate = bitrate
        sound = container.add_stream("libopus", rate=OPUS_RATE)
        sound.layout = "mono"
        count = 0
        for index, frame in enumerate(frames):
            if index == 0:
                video.width, video.height = frame.width, frame.height
            packet_frame = i420_video_frame(frame)
            packet_frame.pts = index
            packet_frame.time_base = Fraction(1, fps)
            container.mux(video.encode(packet_frame))
            count += 1
        container.mux(video.encode(None))
        lead = np.zeros(int(OPUS_RATE * audio_start_ms / 1000), np.int16)
        pcm = np.concatenate([lead, resample(audio.astype(np.int16), sample_rate, OPUS_RATE)])
        for start in range(0, len(pcm), OPUS_FRAME):
            piece = pcm[start : start + OPUS_FRAME]
            if len(piece) < OPUS_FRAME:
                piece = np.concatenate([piece, np.zeros(OPUS_FRAME - len(piece), np.int16)])
            audio_frame = av.AudioFrame.from_ndarray(
                piece.reshape(1, -1), format="s16", layout="mono"
            )
            audio_frame.sample_rate = OPUS_RATE
            audio_frame.pts = start
            audio_frame.time_base = Fraction(1, OPUS_RATE)
            container.mux(sound.encode(audio_frame))
        container.mux(sound.encode(None))
    return count
