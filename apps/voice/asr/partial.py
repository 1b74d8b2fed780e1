"""Transcribe while the user is still speaking, so the final transcript is ready sooner.

Whisper decodes a whole utterance at once, and on a small CPU that takes about a second. Two
things hide most of it:

* **Partials**: while speech goes on, the growing utterance is re-decoded every
  ``interval_ms``; clients get ``…transcription.delta`` events from these.
* **Speculative final**: when the VAD sees the voice drop (the start of the silence that
  may end the turn), the utterance is decoded right away. If the turn really ends
  (``silence_duration_ms`` later), that decode *is* the final transcript; if the user goes
  on, it is discarded. Only the audio after the last decode is ever waited for.

This object only decides what to decode and when, and remembers results; the session runs
the decodes in its ASR executor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class DecodeJob:
    """Audio to decode: the utterance up to ``end_sample``."""

    audio: np.ndarray
    end_sample: int
    speculative: bool


class PartialTranscriber:
    """Tracks one utterance's audio and which decodes of it are still current."""

    def __init__(
        self, *, sample_rate: int = 16_000, interval_ms: int = 1_000, min_audio_ms: int = 400
    ) -> None:
        self.sample_rate = sample_rate
        self.interval_samples = sample_rate * interval_ms // 1000
        self.min_samples = sample_rate * min_audio_ms // 1000
        self._chunks: list[np.ndarray] = []
        self._length = 0
        self._last_job_end = 0
        self._results: dict[int, str] = {}

    @property
    def length(self) -> int:
        """Samples of the utterance so far."""
        return self._length

    def audio(self, end_sample: int | None = None) -> np.ndarray:
        """The utterance (up to ``end_sample``)."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        whole = self._chunks[0] if self._chunks else np.zeros(0, np.int16)
        return whole if end_sample is None else whole[:end_sample]

    def push(self, samples: np.ndarray) -> DecodeJob | None:
        """Add speech; returns a partial decode to run when one is due."""
        self._chunks.append(samples.astype(np.int16, copy=False))
        self._length += len(samples)
        if (
            self._length >= self.min_samples
            and self._length - self._last_job_end >= self.interval_samples
        ):
            return self._job(speculative=False)
        return None

    def silence_started(self) -> DecodeJob | None:
        """The voice dropped: decode everything now, in case this is the end of the turn."""
        if self._length < self.min_samples or self._length == self._last_job_end:
            return None
        return self._job(speculative=True)

    def _job(self, *, speculative: bool) -> DecodeJob:
        self._last_job_end = self._length
        return DecodeJob(self.audio(self._length), self._length, speculative)

    def record(self, job: DecodeJob, text: str) -> None:
        """Remember the transcript of a finished decode."""
        self._results[job.end_sample] = text

    def final_job(self, end_sample: int) -> DecodeJob | None:
        """At the end of the turn: the decode still needed, or None if one already covers it.

        ``end_sample`` is where the speech ended; audio after it is the trailing silence,
        which a decode does not need.
        """
        covered = max(
            (end for end in self._results if end >= min(end_sample, self._length)), default=None
        )
        if covered is not None:
            return None
        return DecodeJob(self.audio(), self._length, speculative=False)

    def final_text(self, end_sample: int) -> str | None:
        """The transcript that covers the utterance up to ``end_sample``, if one was decoded."""
        ends = [end for end in self._results if end >= min(end_sample, self._length)]
        return self._results[min(ends)] if ends else None
