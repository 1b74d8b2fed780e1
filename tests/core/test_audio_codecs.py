import io

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame

from apps.core.audio_codecs import (
    UnsupportedFormat,
    bytes_per_ms,
    format_rate,
    make_decoder,
    make_encoder,
)

ALL_INT16 = np.arange(-32768, 32768).astype(np.int16)


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def chunks(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


def av_encode(codec_name: str, samples: np.ndarray) -> bytes:
    codec = av.CodecContext.create(codec_name, "w")
    codec.sample_rate, codec.layout, codec.format = 8000, "mono", "s16"
    frame = AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
    frame.sample_rate = 8000
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def av_decode(codec_name: str, data: bytes) -> np.ndarray:
    codec = av.CodecContext.create(codec_name, "r")
    codec.sample_rate, codec.layout = 8000, "mono"
    return np.concatenate([f.to_ndarray().reshape(-1) for f in codec.decode(av.Packet(data))])


# --- formats ---


@pytest.mark.parametrize(
    ("fmt", "rate", "per_ms"),
    [
        ({"type": "audio/pcm", "rate": 8000}, 8000, 16),
        ({"type": "audio/pcm", "rate": 16000}, 16000, 32),
        ({"type": "audio/pcm", "rate": 24000}, 24000, 48),
        ({"type": "audio/pcm", "rate": 44100}, 44100, 88.2),
        ({"type": "audio/pcm"}, 24000, 48),
        ({"type": "audio/pcmu"}, 8000, 8),
        ({"type": "audio/pcma"}, 8000, 8),
        ({"type": "audio/mpeg"}, 24000, None),
        ({"type": "audio/opus", "rate": 16000}, 16000, None),
        ({"type": "audio/opus", "rate": 48000}, 48000, None),
    ],
)
def test_format_rate_and_bytes_per_ms(fmt, rate, per_ms) -> None:
    assert format_rate(fmt) == rate
    assert bytes_per_ms(fmt) == per_ms


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "audio/flac"},
        {},
        {"type": "audio/pcm", "rate": 22050},
        {"type": "audio/pcm", "rate": "24000"},
        {"type": "audio/opus", "rate": 24000},
        {"type": "audio/pcmu", "rate": 16000},
        "audio/pcm",
    ],
)
def test_unknown_or_bad_formats_raise(fmt) -> None:
    for call in (format_rate, make_decoder, make_encoder):
        with pytest.raises(UnsupportedFormat):
            call(fmt)


def test_mpeg_is_output_only() -> None:
    with pytest.raises(UnsupportedFormat, match="output-only"):
        make_decoder({"type": "audio/mpeg"})
    assert isinstance(UnsupportedFormat("x"), ValueError)


# --- PCM16 ---


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100])
def test_pcm_round_trip(rate) -> None:
    fmt = {"type": "audio/pcm", "rate": rate}
    x = sine(440, rate, 0.25)
    encoder, decoder = make_encoder(fmt), make_decoder(fmt)
    wire = b"".join(b for c in chunks(x, rate // 50) for b in encoder.encode(c))
    assert wire == x.astype("<i2").tobytes()
    assert encoder.flush() == [] and encoder.encode(x[:0]) == []
    out = np.concatenate([decoder.decode(wire[i : i + 962]) for i in range(0, len(wire), 962)])
    assert out.dtype == np.int16 and np.array_equal(out, x)
    out[0] = 1  # writable, not a view of the wire bytes


def test_pcm_odd_length_raises() -> None:
    decoder = make_decoder({"type": "audio/pcm", "rate": 24000})
    with pytest.raises(ValueError, match="odd number of bytes"):
        decoder.decode(b"\x00\x01\x02")
    assert len(decoder.decode(b"")) == 0


def test_encoders_reject_float_samples() -> None:
    with pytest.raises(TypeError):
        make_encoder({"type": "audio/pcmu"}).encode(np.zeros(160, np.float32))


# --- G.711 ---


@pytest.mark.parametrize(("kind", "av_name"), [("pcmu", "pcm_mulaw"), ("pcma", "pcm_alaw")])
def test_g711_matches_pyav(kind, av_name) -> None:
    fmt = {"type": f"audio/{kind}"}
    decoder = make_decoder(fmt)
    # Decode table is exactly FFmpeg's.
    codes = bytes(range(256))
    table = decoder.decode(codes)
    assert np.array_equal(table, av_decode(av_name, codes))
    # Encoding every int16 value: ITU truncation vs FFmpeg's nearest-level rounding differ only
    # at decision boundaries, and then by one quantiser step.
    ours = np.frombuffer(b"".join(make_encoder(fmt).encode(ALL_INT16)), np.uint8)
    ref = np.frombuffer(av_encode(av_name, ALL_INT16), np.uint8)
    assert len(ours) == len(ref) == 65536
    assert (ours == ref).mean() > 0.98
    levels = np.unique(table)
    step = np.abs(np.searchsorted(levels, table[ours]) - np.searchsorted(levels, table[ref]))
    assert step.max() <= 1
    # Every value maps to one of the two levels that bracket it (the extremes beyond them).
    x = ALL_INT16.astype(int)
    upper = np.clip(np.searchsorted(levels, x), 1, len(levels) - 1)
    lower = np.where(x <= levels[0], 0, np.where(x >= levels[-1], len(levels) - 1, upper - 1))
    upper = np.where(x >= levels[-1], len(levels) - 1, np.where(x <= levels[0], 0, upper))
    got = table[ours]
    assert np.all((got == levels[lower]) | (got == levels[upper]))


@pytest.mark.parametrize("kind", ["pcmu", "pcma"])
def test_g711_round_trip_snr(kind) -> None:
    fmt = {"type": f"audio/{kind}"}
    x = sine(1000, 8000, 0.5)
    wire = b"".join(b for c in chunks(x, 160) for b in make_encoder(fmt).encode(c))
    assert len(wire) == len(x)
    decoder = make_decoder(fmt)
    y = np.concatenate([decoder.decode(wire[i : i + 33]) for i in range(0, len(wire), 33)])
    error = y.astype(np.float64) - x
    snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(error**2))
    assert snr > 30


# --- MP3 ---


def test_mp3_output_decodes_to_the_input_tone() -> None:
    encoder = make_encoder({"type": "audio/mpeg"})
    assert encoder.sample_rate == 24000
    x = sine(440, 24000, 1.0)
    out = [encoder.encode(c) for c in chunks(x, 480)]  # 20 ms chunks
    assert all(len(c) <= 1 for c in out) and all(b for c in out for b in c)
    wire = b"".join(b for c in out for b in c) + b"".join(encoder.flush())
    assert wire[:2] in (b"\xff\xf3", b"\xff\xf2", b"\xff\xe3", b"\xff\xe2")  # MPEG-2/2.5 L3 sync
    with av.open(io.BytesIO(wire), format="mp3") as container:
        frames = list(container.decode(audio=0))
    assert frames[0].sample_rate == 24000
    y = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert abs(len(y) - len(x)) < 0.1 * 24000  # encoder delay and padding only
    assert abs(dominant_hz(y, 24000) - 440) < 5
    # Bit rate: CBR 48 kbit/s.
    assert abs(len(wire) * 8 / (len(y) / 24000) - 48000) < 4000


def test_mp3_encoder_restarts_after_flush() -> None:
    encoder = make_encoder({"type": "audio/mpeg"})
    x = sine(440, 24000, 0.3)
    first = b"".join(encoder.encode(x) + encoder.flush())
    second = b"".join(encoder.encode(x) + encoder.flush())
    assert first == second


# --- Opus ---


@pytest.mark.parametrize("rate", [16000, 48000])
def test_opus_round_trip(rate) -> None:
    fmt = {"type": "audio/opus", "rate": rate}
    encoder, decoder = make_encoder(fmt), make_decoder(fmt)
    assert encoder.sample_rate == decoder.sample_rate == rate
    # A 440 Hz tone over a 200 -> 2000 Hz sweep: the sweep makes the alignment unambiguous.
    t = np.arange(rate) / rate
    sweep = 0.15 * np.sin(2 * np.pi * (200 * t + 900 * t * t))
    x = (32767 * (0.4 * np.sin(2 * np.pi * 440 * t) + sweep)).astype(np.int16)
    frame = rate // 50
    packets: list[bytes] = []
    for chunk in chunks(x, rate * 7 // 1000):  # 7 ms pieces: the encoder must re-frame
        packets += encoder.encode(chunk)
    assert len(packets) >= 49  # one per whole 20 ms frame, available as soon as it is whole
    packets += encoder.flush()
    assert all(isinstance(p, bytes) and p for p in packets)
    decoded = [decoder.decode(p) for p in packets]
    assert all(d.dtype == np.int16 for d in decoded)
    y = np.concatenate(decoded)
    # Encoder lookahead (6.5 ms) plus the padded last frame: within one frame either way.
    assert abs(len(y) - len(x)) <= frame
    assert abs(dominant_hz(y, rate) - 440) < 5
    # The decoded signal is the input delayed by Opus's 6.5 ms lookahead.
    reference = x[frame : rate // 2]
    corr, lag = max(
        (np.corrcoef(y[frame + lag : rate // 2 + lag], reference)[0, 1], lag)
        for lag in range(frame)
    )
    assert corr > 0.95
    assert abs(lag * 1000 / rate - 6.5) < 1.5


@pytest.mark.parametrize("rate", [16000, 48000])
def test_opus_invalid_packets_raise_value_error(rate) -> None:
    fmt = {"type": "audio/opus", "rate": rate}
    decoder = make_decoder(fmt)
    for garbage in (b"\x03\x00", b"\xff" * 10):
        with pytest.raises(ValueError, match="invalid Opus packet"):
            decoder.decode(garbage)
    assert len(decoder.decode(b"")) == 0
    # The decoder survives bad input and keeps decoding good packets.
    packets = make_encoder(fmt).encode(sine(440, rate, 0.1))
    out = np.concatenate([decoder.decode(p) for p in packets])
    assert len(out) > rate // 20


def test_opus_random_bytes_never_crash() -> None:
    decoder = make_decoder({"type": "audio/opus", "rate": 16000})
    rng = np.random.default_rng(0)
    for _ in range(200):
        data = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        try:
            out = decoder.decode(data)
        except ValueError:
            continue
        assert out.dtype == np.int16
