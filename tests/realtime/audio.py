"""Synthetic input audio for driving turn detection with the loudness-based FakeVad."""

from __future__ import annotations

import base64

import numpy as np


def tone(ms: int, *, rate: int = 24_000, amplitude: float = 0.3) -> bytes:
    """PCM16 mono: a 300 Hz tone (speech to FakeVad)."""
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def silence(ms: int, *, rate: int = 24_000) -> bytes:
    """PCM16 mono zeros."""
    return bytes(2 * (rate * ms // 1000))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def append(data: bytes, **extra: object) -> dict[str, object]:
    return {"type": "input_audio_buffer.append", "audio": b64(data), **extra}
