"""Streaming codecs between the realtime API's audio wire formats and int16 mono PCM.

Formats are the GA-shaped dicts the protocol carries::

    {"type": "audio/pcm", "rate": 24000}   # PCM16 LE mono; rate 8000/16000/24000/44100
    {"type": "audio/pcmu"}                  # G.711 mu-law, 8 kHz
    {"type": "audio/pcma"}                  # G.711 A-law, 8 kHz
    {"type": "audio/mpeg"}                  # MP3, 24 kHz mono, output only
    {"type": "audio/opus", "rate": 48000}   # raw Opus packets (no Ogg); rate 16000/48000

Every decoder turns wire bytes into int16 mono samples at ``format_rate(fmt)``; every encoder
turns such samples into a list of non-empty byte chunks (one chunk for PCM and G.711, zero or
one for MP3, one per 20 ms packet for Opus). Resampling to or from an engine rate is the
caller's job (``apps.core.audio.StreamResampler``). Codec objects hold per-stream state: use one
per stream, from one thread at a time (callers may run them in an executor).

G.711 is numpy table lookups built once at import (ITU-T G.711 segment algorithm); MP3 and Opus
use FFmpeg's libmp3lame and libopus through PyAV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import av
import numpy as np
from av.audio.frame import AudioFrame

from apps.core.audio import float_to_int16

PCM_RATES = (8000, 16000, 24000, 44100)
"""Sample rates accepted for ``audio/pcm``."""
OPUS_RATES = (16000, 48000)
"""Sample rates accepted for ``audio/opus``."""
G711_RATE = 8000
MP3_RATE = 24000
DEFAULT_PCM_RATE = 24000
"""``audio/pcm`` without a rate is the GA default, 24 kHz."""
DEFAULT_OPUS_RATE = 48000

MP3_BIT_RATE = 48_000
"""CBR 48 kbit/s: at 24 kHz mono (MPEG-2 Layer III) that is clean for speech and fair for
music, 6 kB/s on the wire, and every 576-sample (24 ms) frame is exactly 144 bytes, so byte
counts map straight to durations for pacing."""
OPUS_BIT_RATES = {16000: 24_000, 48000: 32_000}
"""Wideband speech is transparent-ish at 24 kbit/s, fullband at 32 kbit/s (VBR targets)."""
OPUS_FRAME_MS = 20

_EMPTY = np.zeros(0, dtype=np.int16)
_OPUS_DECODE_RATE = 48000  # FFmpeg's libopus decoder always outputs 48 kHz


class UnsupportedFormat(ValueError):
    """The audio format dict names a type or rate this module does not handle."""


def _parse(fmt: Mapping[str, Any]) -> tuple[str, int]:
    """Validate a format dict and return ``(type, native sample rate)``."""
    if not isinstance(fmt, Mapping):
        raise UnsupportedFormat(f"audio format must be an object, got {type(fmt).__name__}")
    kind = fmt.get("type")
    rate = fmt.get("rate")
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool)):
        raise UnsupportedFormat(f"audio format rate must be an integer, got {rate!r}")
    if kind == "audio/pcm":
        allowed, default = PCM_RATES, DEFAULT_PCM_RATE
    elif kind == "audio/opus":
        allowed, default = OPUS_RATES, DEFAULT_OPUS_RATE
    elif kind in ("audio/pcmu", "audio/pcma"):
        allowed, default = (G711_RATE,), G711_RATE
    elif kind == "audio/mpeg":
        allowed, default = (MP3_RATE,), MP3_RATE
    else:
        raise UnsupportedFormat(f"unsupported audio format type {kind!r}")
    rate = default if rate is None else rate
    if rate not in allowed:
        raise UnsupportedFormat(f"{kind} does not support rate {rate}; use one of {allowed}")
    return kind, rate


def format_rate(fmt: Mapping[str, Any]) -> int:
    """Native sample rate of a wire format.

    Args:
        fmt: Format dict, e.g. ``{"type": "audio/pcm", "rate": 24000}``.

    Returns:
        8000 for G.711, 24000 for MP3, the ``rate`` for PCM and Opus (defaults 24000 / 48000).

    Raises:
        UnsupportedFormat: Unknown type or a rate the type does not allow.
    """
    return _parse(fmt)[1]


def bytes_per_ms(fmt: Mapping[str, Any]) -> float | None:
    """Wire bytes per millisecond of audio for fixed-rate byte formats.

    A float because 44.1 kHz PCM16 is 88.2 bytes/ms; the others are whole numbers
    (16, 32, 48 for PCM at 8/16/24 kHz, 8 for G.711).

    Args:
        fmt: Format dict.

    Returns:
        Bytes per millisecond for PCM and G.711, None for MP3 and Opus (variable or packetised).

    Raises:
        UnsupportedFormat: Unknown type or a rate the type does not allow.
    """
    kind, rate = _parse(fmt)
    if kind == "audio/pcm":
        return rate * 2 / 1000
    if kind in ("audio/pcmu", "audio/pcma"):
        return rate / 1000
    return None


# --- G.711 tables (ITU-T G.711 segment algorithm, as in the Sun/CCITT reference g711.c) ---

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit magnitude limit


def _all_int16() -> np.ndarray:
    """Every int16 value, ordered so that index == the value's uint16 bit pattern."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> np.ndarray:
    val = _all_int16() >> 2  # 14-bit
    mask = np.where(val < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(val), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _alaw_encode_table() -> np.ndarray:
    val = _all_int16() >> 3  # 13-bit
    mask = np.where(val >= 0, 0xD5, 0x55)
    mag = np.where(val >= 0, val, -val - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag)
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code & 0x70) >> 4
    t = (code & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENCODE = _ulaw_encode_table()
_ULAW_DECODE = _ulaw_decode_table()
_ALAW_ENCODE = _alaw_encode_table()
_ALAW_DECODE = _alaw_decode_table()


def _as_int16(samples: np.ndarray) -> np.ndarray:
    """Check encoder input: 1-D int16 (floats would silently truncate to near-silence)."""
    if samples.dtype != np.int16:
        raise TypeError(f"encoders take int16 samples, got {samples.dtype}")
    if samples.ndim != 1:
        raise ValueError(f"encoders take mono 1-D samples, got shape {samples.shape}")
    return samples


# --- Interfaces ---


class AudioDecoder:
    """Wire bytes to int16 mono samples at ``sample_rate`` (one instance per stream)."""

    sample_rate: int
    """Rate of the returned samples (the format's native rate)."""

    def decode(self, data: bytes) -> np.ndarray:
        """Decode the next piece of the stream.

        Args:
            data: Wire bytes: any slice of a PCM/G.711 stream, or exactly one Opus packet.

        Returns:
            int16 samples, shape (n,); may be empty.

        Raises:
            ValueError: Malformed input (odd-length PCM16, an undecodable Opus packet).
        """
        raise NotImplementedError


class AudioEncoder:
    """int16 mono samples at ``sample_rate`` to wire chunks (one instance per stream)."""

    sample_rate: int
    """Rate the input samples must have (the format's native rate)."""

    def encode(self, samples: np.ndarray) -> list[bytes]:
        """Encode the next samples of the stream.

        Args:
            samples: int16, shape (n,), at ``sample_rate``.

        Returns:
            Non-empty byte chunks ready to send, possibly none (packetised codecs buffer).

        Raises:
            TypeError: ``samples`` is not int16.
        """
        raise NotImplementedError

    def flush(self) -> list[bytes]:
        """Emit what is still buffered (end of a stream); the encoder can then start anew."""
        return []


# --- PCM16 ---


class _Pcm16Decoder(AudioDecoder):
    def __init__(self, rate: int) -> None:
        self.sample_rate = rate

    def decode(self, data: bytes) -> np.ndarray:
        """Decode PCM16 LE bytes; an odd byte count raises ValueError (not carried over).

        The protocol layer rejects odd-length appends, so half a sample here is a bug upstream.
        """
        if len(data) % 2:
            raise ValueError("odd number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16)  # copy: writable, native


class _Pcm16Encoder(AudioEncoder):
    def __init__(self, rate: int) -> None:
        self.sample_rate = rate

    def encode(self, samples: np.ndarray) -> list[bytes]:
        """Encode as PCM16 LE: one chunk (none for empty input)."""
        samples = _as_int16(samples)
        return [samples.astype("<i2", copy=False).tobytes()] if len(samples) else []


# --- G.711 ---


class _G711Decoder(AudioDecoder):
    def __init__(self, table: np.ndarray) -> None:
        self.sample_rate = G711_RATE
        self._table = table

    def decode(self, data: bytes) -> np.ndarray:
        """Decode G.711 bytes (one byte per sample, any length)."""
        return self._table[np.frombuffer(data, dtype=np.uint8)]


class _G711Encoder(AudioEncoder):
    def __init__(self, table: np.ndarray) -> None:
        self.sample_rate = G711_RATE
        self._table = table

    def encode(self, samples: np.ndarray) -> list[bytes]:
        """Encode to G.711: one chunk (none for empty input)."""
        samples = _as_int16(samples)
        return [self._table[samples.view(np.uint16)].tobytes()] if len(samples) else []


# --- PyAV-backed packet codecs ---


class _AvEncoder(AudioEncoder):
    """Buffers samples into whole codec frames and feeds an FFmpeg encoder through PyAV."""

    _codec_name: str
    _sample_format: str
    _join_packets: bool
    """True: return the packets of one call as a single chunk (MP3 is a byte stream)."""

    def __init__(self, rate: int, bit_rate: int, options: dict[str, str] | None = None) -> None:
        self.sample_rate = rate
        self._bit_rate = bit_rate
        self._options = options or {}
        self._open()

    def _open(self) -> None:
        codec = av.CodecContext.create(self._codec_name, "w")
        codec.sample_rate = self.sample_rate
        codec.layout = "mono"
        codec.format = self._sample_format
        codec.bit_rate = self._bit_rate
        codec.options = self._options
        codec.open()
        self._codec = codec
        self._frame_size = codec.frame_size
        self._pending = _EMPTY
        self._pts = 0

    def _encode_frame(self, samples: np.ndarray | None) -> list[bytes]:
        frame = None
        if samples is not None:
            frame = AudioFrame.from_ndarray(
                samples.reshape(1, -1), format=self._sample_format, layout="mono"
            )
            frame.sample_rate = self.sample_rate
            frame.pts = self._pts
            self._pts += len(samples)
        return [bytes(packet) for packet in self._codec.encode(frame)]

    def _chunks(self, packets: list[bytes]) -> list[bytes]:
        packets = [p for p in packets if p]
        if self._join_packets and len(packets) > 1:
            return [b"".join(packets)]
        return packets

    def encode(self, samples: np.ndarray) -> list[bytes]:
        """Encode whole frames now; a partial frame waits for more samples or ``flush``."""
        samples = _as_int16(samples)
        pending = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        size = self._frame_size
        whole = len(pending) - len(pending) % size
        packets: list[bytes] = []
        for start in range(0, whole, size):
            packets += self._encode_frame(pending[start : start + size])
        self._pending = pending[whole:].copy()
        return self._chunks(packets)

    def flush(self) -> list[bytes]:
        """Encode the partial last frame, drain the codec's delay, and reset for a new stream."""
        packets: list[bytes] = []
        if len(self._pending):
            packets += self._encode_frame(self._pending)  # both codecs accept a short last frame
        packets += self._encode_frame(None)
        self._open()
        return self._chunks(packets)


class _Mp3Encoder(_AvEncoder):
    _codec_name = "libmp3lame"
    _sample_format = "s16p"  # lame has no packed s16; planar mono is the same memory
    _join_packets = True

    def __init__(self) -> None:
        super().__init__(MP3_RATE, MP3_BIT_RATE)


class _OpusEncoder(_AvEncoder):
    _codec_name = "libopus"
    _sample_format = "s16"
    _join_packets = False

    def __init__(self, rate: int) -> None:
        super().__init__(rate, OPUS_BIT_RATES[rate], {"frame_duration": str(OPUS_FRAME_MS)})


class _OpusDecoder(AudioDecoder):
    """One raw Opus packet per call; libopus decodes at 48 kHz, swresample brings it to 16 kHz.

    The resampler holds back about 1 ms (16 samples at 16 kHz) of filter delay, released by the
    next packet.
    """

    def __init__(self, rate: int) -> None:
        self.sample_rate = rate
        codec = av.CodecContext.create("libopus", "r")
        codec.sample_rate = _OPUS_DECODE_RATE
        codec.layout = "mono"
        self._codec = codec
        self._resampler = (
            None
            if rate == _OPUS_DECODE_RATE
            else av.AudioResampler(format="s16", layout="mono", rate=rate)
        )

    def decode(self, data: bytes) -> np.ndarray:
        """Decode exactly one Opus packet; raises ValueError for an invalid one."""
        if not data:  # an empty packet would put FFmpeg's decoder into draining mode for good
            return _EMPTY.copy()
        try:
            frames = self._codec.decode(av.Packet(data))
            if self._resampler is not None:
                frames = [out for frame in frames for out in self._resampler.resample(frame)]
        except av.error.FFmpegError as exc:
            raise ValueError(f"invalid Opus packet: {exc}") from exc
        arrays = [self._to_int16(frame) for frame in frames]
        if not arrays:
            return _EMPTY.copy()
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    @staticmethod
    def _to_int16(frame: AudioFrame) -> np.ndarray:
        samples = frame.to_ndarray().reshape(-1)
        return samples if samples.dtype == np.int16 else float_to_int16(samples)


# --- Factories ---


def make_decoder(fmt: Mapping[str, Any]) -> AudioDecoder:
    """A fresh decoder for one input stream in ``fmt``.

    Args:
        fmt: Format dict.

    Returns:
        Decoder producing int16 mono at ``format_rate(fmt)``.

    Raises:
        UnsupportedFormat: Unknown format, a bad rate, or ``audio/mpeg`` (output only).
    """
    kind, rate = _parse(fmt)
    if kind == "audio/pcm":
        return _Pcm16Decoder(rate)
    if kind == "audio/pcmu":
        return _G711Decoder(_ULAW_DECODE)
    if kind == "audio/pcma":
        return _G711Decoder(_ALAW_DECODE)
    if kind == "audio/opus":
        return _OpusDecoder(rate)
    raise UnsupportedFormat(f"{kind} is an output-only format")


def make_encoder(fmt: Mapping[str, Any]) -> AudioEncoder:
    """A fresh encoder for one output stream in ``fmt``.

    Args:
        fmt: Format dict.

    Returns:
        Encoder taking int16 mono at ``format_rate(fmt)``.

    Raises:
        UnsupportedFormat: Unknown format or a bad rate.
    """
    kind, rate = _parse(fmt)
    if kind == "audio/pcm":
        return _Pcm16Encoder(rate)
    if kind == "audio/pcmu":
        return _G711Encoder(_ULAW_ENCODE)
    if kind == "audio/pcma":
        return _G711Encoder(_ALAW_ENCODE)
    if kind == "audio/mpeg":
        return _Mp3Encoder()
    return _OpusEncoder(rate)
