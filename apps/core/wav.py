"""Read and write WAV files (PCM 8/16/32-bit or float) as mono int16."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .audio import float_to_int16


def read_wav_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """Return (int16 mono samples, sample rate); channels are averaged.

    Raises:
        ValueError: Not a WAV file this reader understands.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV is not supported; use 8, 16 or 32-bit PCM")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return float_to_int16(data), rate


def write_wav_mono(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write int16 mono samples as a 16-bit PCM WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())
