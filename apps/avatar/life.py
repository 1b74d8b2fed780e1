"""What makes an avatar look alive between and during words: blinks, idle motion, states.

Everything here is a pure function of a stream's clock (milliseconds since the stream
started) and a per-stream random seed, so a frame can be rendered for any time, twice alike,
and tests can look at any moment. ``Animator`` combines it with the mouth: utterances are
placed on the stream clock as the sink plays them, and a barge-in eases the mouth closed.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .lipsync import VisemeTrack
from .visemes import REST, MouthPose

# Blinks: intervals drawn from a gamma distribution (mean ~4 s, never under 1.2 s), each
# closing and reopening over BLINK_MS, now and then a double blink.
BLINK_MS = 150.0
BLINK_MEAN_GAP_S = 4.0
BLINK_MIN_GAP_S = 1.2
DOUBLE_BLINK_CHANCE = 0.12
# Breathing: one breath every ~4 s moves the shoulders and head this many pixels (at 512 px).
BREATH_PERIOD_S = 4.2
BREATH_PX = 1.6
# Idle head motion: a few slow sines with random phases (pixels and degrees at 512 px).
HEAD_SWAY_PX = 3.0
HEAD_NOD_PX = 2.0
HEAD_ROLL_DEG = 1.5
# Barge-in: the mouth goes from wherever it is to closed over this long (2 frames at 25 fps).
INTERRUPT_EASE_MS = 80.0


class Mode(enum.Enum):
    """What the avatar is doing, which the renderer shows (eyes, brows, head)."""

    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Small head motion: offsets in pixels at a 512 px frame, roll in degrees."""

    dx: float
    dy: float
    roll_deg: float


@dataclass(frozen=True, slots=True)
class FrameState:
    """Everything a renderer needs for one frame."""

    t_ms: float
    mouth: MouthPose
    eyes_closed: float
    """0 open … 1 shut (a blink)."""
    head: HeadPose
    breath: float
    """-1 … 1: where in the breath the shoulders are."""
    mode: Mode
    gaze_x: float
    """-1 (left) … 1 (right): where the eyes look (thinking looks aside)."""
    gaze_y: float
    """-1 (down) … 1 (up)."""


class Life:
    """Blinks and idle motion of one stream (deterministic for a seed)."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(6)]
        self._blinks: list[float] = []  # start times, ms
        self._rng = rng
        self._next_s = rng.uniform(0.8, 3.0)

    def blink_starts(self, until_ms: float) -> list[float]:
        """Start times of every blink before ``until_ms``."""
        self._schedule(until_ms)
        return [b for b in self._blinks if b < until_ms]

    def _schedule(self, until_ms: float) -> None:
        while self._next_s * 1000 < until_ms:
            start_ms = self._next_s * 1000
            self._blinks.append(start_ms)
            if self._rng.random() < DOUBLE_BLINK_CHANCE:
                self._blinks.append(start_ms + BLINK_MS + 90)
            gap = self._rng.gammavariate(4.0, BLINK_MEAN_GAP_S / 4.0)
            self._next_s += max(BLINK_MIN_GAP_S, gap)

    def eyes_closed(self, t_ms: float) -> float:
        """Eyelid closure at ``t_ms``: a quick close and a slightly slower reopening."""
        # Called every frame: walk back from the newest blink, no copy of the whole list.
        self._schedule(t_ms + 1)
        for start in reversed(self._blinks):
            phase = (t_ms - start) / BLINK_MS
            if 0 <= phase < 1:
                return phase / 0.4 if phase < 0.4 else 1.0 - (phase - 0.4) / 0.6
            if phase >= 1:
                break
        return 0.0

    def breath(self, t_ms: float) -> float:
        """Where in the breathing cycle (-1 … 1)."""
        return math.sin(2 * math.pi * t_ms / 1000 / BREATH_PERIOD_S + self._phases[0])

    def head(self, t_ms: float, mode: Mode) -> HeadPose:
        """Idle head motion; listening tilts the head a little, speaking moves it more."""
        s = t_ms / 1000
        p = self._phases
        energy = 1.4 if mode is Mode.SPEAKING else 1.0
        dx = (
            HEAD_SWAY_PX
            * energy
            * (0.6 * math.sin(0.23 * s + p[1]) + 0.4 * math.sin(0.61 * s + p[2]))
        )
        dy = (
            HEAD_NOD_PX
            * energy
            * (0.7 * math.sin(0.37 * s + p[3]) + 0.3 * math.sin(1.1 * s + p[4]))
        )
        roll = HEAD_ROLL_DEG * math.sin(0.19 * s + p[5])
        if mode is Mode.LISTENING:
            roll += 2.5  # an attentive tilt
        dy += BREATH_PX * 0.5 * self.breath(t_ms)
        return HeadPose(dx=dx, dy=dy, roll_deg=roll)


@dataclass(slots=True)
class _Utterance:
    track: VisemeTrack
    start_ms: float
    duration_ms: float
    poses: Sequence[MouthPose] = ()
    """Per-frame poses from the audio (engines without timings), ``poses_fps`` apart."""
    poses_fps: float = 25.0

    @property
    def end_ms(self) -> float:
        return self.start_ms + max(self.track.end_ms, self.duration_ms)

    def pose_at(self, local_ms: float) -> MouthPose:
        if self.poses:
            index = int(local_ms * self.poses_fps / 1000.0)
            return self.poses[index] if index < len(self.poses) else REST
        return self.track.pose_at(local_ms)


class Animator:
    """The avatar of one stream: what it says (placed on the stream clock) and how it lives.

    ``speak`` places an utterance's phoneme track at the stream time its audio starts
    playing; ``interrupt`` (barge-in) eases the mouth closed within ``INTERRUPT_EASE_MS``
    and turns to listening; ``state(t_ms)`` gives the frame's ``FrameState``.
    """

    def __init__(self, seed: int = 0) -> None:
        self.life = Life(seed)
        self._utterances: list[_Utterance] = []
        self._mode = Mode.LISTENING
        self._interrupted_at: float | None = None
        self._interrupted_pose = REST

    def speak(
        self,
        track: VisemeTrack,
        *,
        start_ms: float,
        duration_ms: float = 0.0,
        poses: Sequence[MouthPose] = (),
        poses_fps: float = 25.0,
    ) -> None:
        """Say ``track`` from stream time ``start_ms`` (utterances may follow each other).

        ``duration_ms``: how long its audio plays, when longer than its last phoneme (or
        when the engine gave no phonemes and the mouth follows the audio instead).
        ``poses``: for audio without phoneme timings, one pose per ``1000 / poses_fps`` ms
        (``lipsync.poses_from_audio``); they take the place of the track.
        """
        self._utterances = [u for u in self._utterances if u.end_ms > start_ms - 1000]
        self._utterances.append(_Utterance(track, start_ms, duration_ms, poses, poses_fps))
        self._interrupted_at = None
        self._mode = Mode.SPEAKING

    def think(self) -> None:
        """The user finished; an answer is being prepared."""
        if self._mode is not Mode.SPEAKING:
            self._mode = Mode.THINKING

    def listen(self) -> None:
        """Nothing to say: attend to the user."""
        self._mode = Mode.LISTENING

    def interrupt(self, t_ms: float) -> None:
        """Barge-in at ``t_ms``: stop speaking, ease the mouth closed, listen."""
        self._interrupted_pose = self._speech_pose(t_ms)
        self._interrupted_at = t_ms
        self._utterances.clear()
        self._mode = Mode.LISTENING

    def speaking_until_ms(self) -> float:
        """When the last placed utterance ends on the stream clock (0 if none)."""
        return max((u.end_ms for u in self._utterances), default=0.0)

    def _speech_pose(self, t_ms: float) -> MouthPose:
        for utterance in reversed(self._utterances):
            local = t_ms - utterance.start_ms
            if local >= 0:
                return utterance.pose_at(local)
        return REST

    def mouth(self, t_ms: float) -> MouthPose:
        """The mouth at ``t_ms``."""
        if self._interrupted_at is not None:
            progress = (t_ms - self._interrupted_at) / INTERRUPT_EASE_MS
            if progress >= 1:
                return REST
            return self._interrupted_pose.blend(REST, max(0.0, progress))
        return self._speech_pose(t_ms)

    def mode(self, t_ms: float) -> Mode:
        """The avatar's state at ``t_ms`` (speaking turns to listening when speech ends)."""
        if self._mode is Mode.SPEAKING and t_ms >= self.speaking_until_ms() + 300:
            self._mode = Mode.LISTENING
        return self._mode

    def state(self, t_ms: float) -> FrameState:
        """The whole frame state at ``t_ms``."""
        mode = self.mode(t_ms)
        gaze_x, gaze_y = (0.45, 0.35) if mode is Mode.THINKING else (0.0, 0.0)
        return FrameState(
            t_ms=t_ms,
            mouth=self.mouth(t_ms),
            eyes_closed=self.life.eyes_closed(t_ms),
            head=self.life.head(t_ms, mode),
            breath=self.life.breath(t_ms),
            mode=mode,
            gaze_x=gaze_x,
            gaze_y=gaze_y,
        )
