"""Visemes from phoneme timings and from audio; blinks, idle motion and barge-in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from apps.avatar.life import INTERRUPT_EASE_MS, Animator, Life, Mode
from apps.avatar.lipsync import VisemeTrack, poses_from_audio
from apps.avatar.visemes import POSES, REST, Viseme, viseme_for

FRAME_MS = 40.0  # 25 fps


@dataclass(frozen=True)
class P:
    symbol: str
    start_ms: float
    duration_ms: float


def _phonemes(spec: str, *, each_ms: float = 100.0, start_ms: float = 0.0) -> list[P]:
    return [P(s, start_ms + i * each_ms, each_ms) for i, s in enumerate(spec.split())]


@pytest.mark.parametrize(
    ("symbol", "viseme"),
    [
        # espeak IPA as Piper reports it (stress marks and all)
        ("m", Viseme.PP),
        ("f", Viseme.FF),
        ("θ", Viseme.TH),
        ("s", Viseme.DD),
        ("ʃ", Viseme.CH),
        ("ˈɑː", Viseme.AA),
        ("ə", Viseme.EH),
        ("iː", Viseme.IH),
        ("ˈoʊ", Viseme.OH),
        ("uː", Viseme.UW),
        (" ", Viseme.SIL),
        (",", Viseme.SIL),
        ("^", Viseme.SIL),
        # Baker pinyin phones (the Mandarin voice)
        ("b", Viseme.PP),
        ("zh", Viseme.CH),
        ("ang1", Viseme.AA),
        ("i3", Viseme.IH),
        ("ou4", Viseme.OH),
        ("v2", Viseme.UW),
        ("sil", Viseme.SIL),
        # letters (the scripted engine)
        ("a", Viseme.AA),
        ("h", Viseme.DD),
    ],
)
def test_phoneme_symbols_map_to_visemes(symbol: str, viseme: Viseme) -> None:
    assert viseme_for(symbol) is viseme


def test_there_are_at_least_six_distinct_mouth_shapes() -> None:
    shapes = {
        (round(p.open, 2), round(p.width, 2), round(p.round, 2), round(p.teeth, 2))
        for v, p in POSES.items()
        if v is not Viseme.SIL
    }
    assert len(shapes) >= 6
    assert POSES[Viseme.SIL].closed and POSES[Viseme.PP].closed


def test_the_mouth_follows_the_phoneme_timings_within_one_frame() -> None:
    phonemes = _phonemes("h ɛ l ˈoʊ w ɜː l d", each_ms=120.0, start_ms=200.0)
    track = VisemeTrack(phonemes)
    for phoneme in phonemes:
        target = POSES[viseme_for(phoneme.symbol)]
        # One frame after the phoneme starts, the mouth has reached its shape.
        reached = track.pose_at(phoneme.start_ms + FRAME_MS + 5)
        assert track.viseme_at(phoneme.start_ms + 1) is viseme_for(phoneme.symbol)
        assert abs(reached.open - target.open) < 0.02, phoneme
        assert abs(reached.width - target.width) < 0.02, phoneme


def test_the_mouth_is_closed_in_every_silent_frame() -> None:
    # "hello", a pause, "world": pauses as Piper and the Mandarin voice mark them.
    phonemes = [
        *_phonemes("h ɛ l ˈoʊ", each_ms=90.0, start_ms=300.0),
        P(" ", 660.0, 400.0),
        *_phonemes("w ɜː l d", each_ms=90.0, start_ms=1060.0),
        P("sil", 1420.0, 500.0),
    ]
    track = VisemeTrack(phonemes)
    sounding = [(s.start_ms, s.end_ms) for s in track.spans]
    for frame in range(0, 60):
        t_ms = frame * FRAME_MS
        # Silent: no sound now, and the last one ended over a frame ago.
        if all(not (start <= t_ms < end + FRAME_MS) for start, end in sounding):
            assert track.pose_at(t_ms) == REST, t_ms


def test_transitions_are_smooth() -> None:
    track = VisemeTrack(_phonemes("m ɑ m ɑ m ɑ", each_ms=150.0))
    opens = [track.pose_at(t).open for t in np.arange(0, 900, 5.0)]
    assert max(abs(b - a) for a, b in zip(opens, opens[1:], strict=False)) < 0.3


def test_audio_without_timings_opens_the_mouth_with_loudness_and_closes_it_in_silence() -> None:
    rate = 16_000
    t = np.arange(rate) / rate
    loud_vowel = 0.3 * np.sin(2 * np.pi * 300 * t)
    bright = 0.3 * np.sin(2 * np.pi * 3500 * t)
    silence = np.zeros(rate)
    audio = (np.concatenate([silence, loud_vowel, bright, silence]) * 32767).astype(np.int16)
    poses = poses_from_audio(audio, rate, fps=25)
    assert len(poses) == 100
    assert all(p == REST for p in poses[:25] + poses[75:])
    assert all(p.open > 0.3 for p in poses[26:74])
    # A dark vowel is round, a bright sound wide.
    assert np.mean([p.round for p in poses[26:49]]) > np.mean([p.round for p in poses[51:74]])
    assert np.mean([p.width for p in poses[51:74]]) > np.mean([p.width for p in poses[26:49]])


def test_blinks_come_at_natural_random_intervals() -> None:
    life = Life(seed=7)
    starts = life.blink_starts(120_000)
    gaps = np.diff(starts)
    assert 18 <= len(starts) <= 60  # about every 2-6 s over two minutes
    assert gaps.min() >= 200  # double blinks are a blink apart, never overlapping
    assert np.std(gaps) > 500  # not a metronome
    closed = [life.eyes_closed(t) for t in np.arange(0, 120_000, FRAME_MS)]
    assert max(closed) > 0.7 and np.mean([c > 0.5 for c in closed]) < 0.1
    assert Life(seed=8).blink_starts(60_000) != Life(seed=7).blink_starts(60_000)


def test_idle_head_and_breathing_motion_occurs() -> None:
    life = Life(seed=1)
    heads = [life.head(t, Mode.LISTENING) for t in np.arange(0, 20_000, FRAME_MS)]
    dxs, dys = [h.dx for h in heads], [h.dy for h in heads]
    assert np.ptp(dxs) > 1.0 and np.ptp(dys) > 1.0
    # Gentle: consecutive frames move well under a pixel.
    assert max(abs(b - a) for a, b in zip(dxs, dxs[1:], strict=False)) < 0.5
    breaths = [life.breath(t) for t in np.arange(0, 10_000, FRAME_MS)]
    assert min(breaths) < -0.9 and max(breaths) > 0.9


def test_states_are_visible_and_speech_ends_in_listening() -> None:
    animator = Animator(seed=3)
    assert animator.state(0).mode is Mode.LISTENING
    animator.think()
    thinking = animator.state(100)
    assert thinking.mode is Mode.THINKING and thinking.gaze_x != 0
    animator.speak(VisemeTrack(_phonemes("h ɑ", each_ms=100)), start_ms=200)
    assert animator.state(250).mode is Mode.SPEAKING
    assert animator.state(250).mouth != REST or animator.state(330).mouth != REST
    assert animator.state(2000).mode is Mode.LISTENING
    listening, speaking = Life(3).head(1000, Mode.LISTENING), Life(3).head(1000, Mode.SPEAKING)
    assert listening.roll_deg != speaking.roll_deg


def test_barge_in_closes_the_mouth_within_three_frames() -> None:
    animator = Animator(seed=1)
    animator.speak(VisemeTrack(_phonemes("ɑ ɑ ɑ ɑ ɑ ɑ ɑ ɑ", each_ms=200)), start_ms=0)
    t_ms = 500.0
    assert animator.mouth(t_ms).open > 0.5
    animator.interrupt(t_ms)
    before = animator.mouth(t_ms - 1).open
    frames = [animator.mouth(t_ms + k * FRAME_MS) for k in range(1, 5)]
    assert frames[0].open < before
    assert frames[2] == REST and frames[3] == REST
    assert INTERRUPT_EASE_MS <= 3 * FRAME_MS
    assert animator.state(t_ms + 1).mode is Mode.LISTENING
