"""Test speech made offline by the real engines, and error rates to judge transcripts by."""

from __future__ import annotations

import re

import numpy as np

ENGLISH_SENTENCES = [
    "Hello, how are you doing today?",
    "The weather is sunny and warm this afternoon.",
    "Please turn on the lights in the kitchen.",
    "I would like to book a table for two people at seven o'clock.",
    "What is the capital city of France?",
    "My favourite colour is green.",
]
_NUMBERS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
    "11": "eleven",
    "12": "twelve",
}
_SPELLING = {"favorite": "favourite", "color": "colour"}


def normalise_english(text: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [_SPELLING.get(_NUMBERS.get(w, w), _NUMBERS.get(w, w)) for w in words]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def error_rate(pairs: list[tuple[list[str], list[str]]]) -> float:
    errors = sum(edit_distance(ref, hyp) for ref, hyp in pairs)
    return errors / sum(len(ref) for ref, _ in pairs)


def with_silence(samples: np.ndarray, rate: int, before_ms: int, after_ms: int) -> np.ndarray:
    pad = lambda ms: np.zeros(rate * ms // 1000, dtype=np.int16)  # noqa: E731
    return np.concatenate([pad(before_ms), samples, pad(after_ms)])


def noise(rate: int, seconds: float, dbfs: float, seed: int = 7) -> np.ndarray:
    rms = 10 ** (dbfs / 20)
    values = np.random.default_rng(seed).normal(0.0, rms, int(rate * seconds))
    return (np.clip(values, -1, 1) * 32767).astype(np.int16)


CHINESE_SENTENCES = [
    "你好，今天天气怎么样？",
    "请帮我打开客厅的灯。",
    "我想预订明天晚上七点两个人的座位。",
    "北京是中国的首都。",
    "现在几点了？",
    "我最喜欢的水果是苹果和香蕉。",
    "这个周末我们一起去公园散步吧。",
    "谢谢你的帮助，祝你有美好的一天。",
]


def normalise_chinese(text: str) -> list[str]:
    """Characters only: punctuation, spaces and Latin dropped (CER is per character)."""
    return re.findall(r"[\u3400-\u9fff]", text)


def piper_pcm16(text: str, *, rate: int = 24_000) -> bytes:
    """``text`` spoken by the embedded English voice (Piper), as PCM16 mono at ``rate``."""
    from django.conf import settings

    from apps.core.audio import resample
    from apps.voice.tts.base import VoiceSpec
    from apps.voice.tts.piper import PiperTts

    tts = PiperTts(cache_dir=str(settings.VOICE_MODEL_CACHE))
    chunks = list(tts.synthesize(text, VoiceSpec("en_US-joe-medium")))
    audio = np.concatenate([resample(c.samples, c.sample_rate, rate) for c in chunks])
    return audio.astype("<i2").tobytes()
