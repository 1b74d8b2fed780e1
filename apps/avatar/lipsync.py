"""Mouth poses over time: from a TTS utterance's phoneme timings, or from its audio alone.

``VisemeTrack`` follows the timings an engine reports for what it synthesised (the sink
plays exactly that audio, so the mouth follows what is heard). Each phoneme's viseme is
reached over a short transition from the previous one (coarticulation); pauses ease to a
closed mouth. Engines that report no timings (remote TTS) get ``poses_from_audio``: the
opening follows loudness, the shape follows the spectrum (bright sounds wide, dark sounds
round), and the mouth is closed wherever the audio is silent.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .visemes import POSES, REST, MouthPose, Viseme, is_modifier, viseme_for

# A viseme is reached this long after its phoneme starts (or within half the phoneme).
TRANSITION_MS = 45.0
# After the last sound of a stretch, the lips are together again this much later.
RELEASE_MS = 40.0
# poses_from_audio: quieter than this is silence (closed); this much louder is fully open.
SILENCE_DBFS = -45.0
OPEN_RANGE_DB = 30.0


class TimedPhoneme(Protocol):
    """What a TTS engine reports per phoneme (``apps.voice.tts.base.Phoneme``)."""

    symbol: str
    start_ms: float
    duration_ms: float


@dataclass(frozen=True, slots=True)
class VisemeSpan:
    """One viseme held from ``start_ms`` to ``end_ms``."""

    viseme: Viseme
    start_ms: float
    end_ms: float


def _smooth(x: float) -> float:
    x = max(0.0, min(1.0, x))
    return x * x * (3.0 - 2.0 * x)


class VisemeTrack:
    """The mouth over one utterance, from its phoneme timings (ms from its start)."""

    def __init__(self, phonemes: Iterable[TimedPhoneme]) -> None:
        spans: list[VisemeSpan] = []
        for phoneme in sorted(phonemes, key=lambda p: p.start_ms):
            if phoneme.duration_ms <= 0:
                continue
            end = phoneme.start_ms + phoneme.duration_ms
            if is_modifier(phoneme.symbol):
                if spans and phoneme.start_ms - spans[-1].end_ms < 1:
                    last = spans[-1]
                    spans[-1] = VisemeSpan(last.viseme, last.start_ms, max(last.end_ms, end))
                continue
            viseme = viseme_for(phoneme.symbol)
            if viseme is Viseme.SIL:
                continue  # pauses are simply the gaps between spans
            if spans and spans[-1].viseme is viseme and phoneme.start_ms - spans[-1].end_ms < 1:
                spans[-1] = VisemeSpan(viseme, spans[-1].start_ms, end)  # one held shape
            else:
                spans.append(VisemeSpan(viseme, phoneme.start_ms, end))
        self.spans: tuple[VisemeSpan, ...] = tuple(spans)
        self._starts = [span.start_ms for span in spans]

    @property
    def end_ms(self) -> float:
        """When the last sound ends (0 for an utterance without any)."""
        return self.spans[-1].end_ms if self.spans else 0.0

    def viseme_at(self, t_ms: float) -> Viseme:
        """The viseme whose phoneme is sounding at ``t_ms`` (SIL in pauses)."""
        index = bisect.bisect_right(self._starts, t_ms) - 1
        if index >= 0 and t_ms < self.spans[index].end_ms:
            return self.spans[index].viseme
        return Viseme.SIL

    def pose_at(self, t_ms: float) -> MouthPose:
        """The mouth at ``t_ms``: closed in pauses, in transition at phoneme starts."""
        index = bisect.bisect_right(self._starts, t_ms) - 1
        if index < 0:
            return REST
        span = self.spans[index]
        if t_ms >= span.end_ms:
            # A pause: ease from the last shape to closed, reached RELEASE_MS after it.
            return POSES[span.viseme].blend(REST, _smooth((t_ms - span.end_ms) / RELEASE_MS))
        previous = REST
        if index > 0:
            before = self.spans[index - 1]
            gap = span.start_ms - before.end_ms
            if gap < RELEASE_MS:
                previous = POSES[before.viseme].blend(REST, _smooth(gap / RELEASE_MS))
        ramp = min(TRANSITION_MS, (span.end_ms - span.start_ms) / 2)
        return previous.blend(POSES[span.viseme], _smooth((t_ms - span.start_ms) / ramp))


def poses_from_audio(
    samples: np.ndarray, sample_rate: int, *, fps: float, start_frame_s: float = 0.0
) -> list[MouthPose]:
    """One pose per video frame for audio without phoneme timings.

    Frame ``k`` shows the audio of ``[start + k/fps, start + (k+1)/fps)``: loudness opens
    the mouth, the spectral centroid shapes it. Silent frames are closed.

    Args:
        samples: int16 (or float in -1..1) mono audio.
        sample_rate: Its rate.
        fps: Video frames per second.
        start_frame_s: Where in ``samples`` frame 0 begins.
    """
    audio = np.asarray(samples)
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    else:
        audio = audio.astype(np.float32)
    per_frame = sample_rate / fps
    count = int(max(0.0, len(audio) / sample_rate - start_frame_s) * fps)
    poses: list[MouthPose] = []
    for k in range(count):
        begin = int(start_frame_s * sample_rate + k * per_frame)
        window = audio[begin : int(begin + per_frame)]
        if not len(window):
            poses.append(REST)
            continue
        rms = float(np.sqrt(np.mean(window * window)))
        dbfs = 20.0 * np.log10(max(rms, 1e-9))
        if dbfs < SILENCE_DBFS:
            poses.append(REST)
            continue
        opening = min(1.0, (dbfs - SILENCE_DBFS) / OPEN_RANGE_DB)
        spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
        freqs = np.fft.rfftfreq(len(window), 1.0 / sample_rate)
        centroid = float((spectrum * freqs).sum() / max(spectrum.sum(), 1e-9))
        # ~500 Hz dark ("o", "u") … ~3 kHz bright ("i", "s").
        brightness = min(1.0, max(0.0, (centroid - 500.0) / 2500.0))
        shape = POSES[Viseme.OH].blend(POSES[Viseme.IH], brightness)
        poses.append(shape.blend(POSES[Viseme.AA], 0.3).scaled(0.35 + 0.65 * opening))
    return poses
