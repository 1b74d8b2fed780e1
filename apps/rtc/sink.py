"""The WebRTC ``AudioSink``: the reply goes into the call's audio track, the lips follow it.

Each slice of reply audio is placed on the call's media clock where it will play; the
avatar (when the call has video) is told to say the slice's phonemes from that same media
time, so lips and sound share one clock. Because the track knows what has been played,
this sink does what OpenAI's WebRTC server does and a WebSocket client must do itself:

* ``output_audio_buffer.started`` when a response's first audio enters the buffer (it
  plays within a frame), ``stopped`` once all of it has played after the response
  finished, ``cleared`` when it is cut off;
* on barge-in (or ``output_audio_buffer.clear``) the queued audio is dropped at once and
  the assistant item is truncated to what was played (``conversation.item.truncated``),
  so the transcript holds only what the user heard.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from apps.avatar.life import Animator
from apps.avatar.lipsync import VisemeTrack, poses_from_audio
from apps.core.audio import resample
from apps.realtime.session.handlers.conversation import truncate_item
from apps.realtime.session.sink import AudioSink, AudioTarget

from .media import AUDIO_RATE, ReplyAudioTrack

if TYPE_CHECKING:
    from apps.realtime.session.session import RealtimeSession
    from apps.voice.tts.base import Phoneme

# Audio is handed to the track in slices this long, each placed when it is queued.
SLICE_MS = 100
# Mouth poses per second for audio without phoneme timings.
POSES_FPS = 50.0


@dataclass(slots=True)
class _Playing:
    """One response's audio part as the track plays it."""

    target: AudioTarget
    queued_samples: int = 0
    played_samples: int = 0
    started: bool = False
    finished: bool = False


class TrackAudioSink(AudioSink):
    """Feeds a ``ReplyAudioTrack`` and, if there is one, the avatar's ``Animator``."""

    reports_playback = True

    def __init__(
        self,
        session: RealtimeSession,
        track: ReplyAudioTrack,
        animator: Animator | None = None,
    ) -> None:
        self.session = session
        self.track = track
        self.animator = animator
        self._parts: dict[Hashable, _Playing] = {}
        self._generation = 0
        track.on_played = self._played

    @staticmethod
    def _tag(target: AudioTarget) -> Hashable:
        return (target.response_id, target.item.id, target.content_index)

    # --- from the response -------------------------------------------------------------------

    async def play(
        self,
        samples: np.ndarray,
        sample_rate: int,
        target: AudioTarget,
        phonemes: Sequence[Phoneme] = (),
    ) -> None:
        """Resample off the loop, then queue slice by slice within the session's lead."""
        generation = self._generation
        engines = self.session.deps.engines
        pcm = await engines.run(engines.audio_executor, resample, samples, sample_rate, AUDIO_RATE)
        poses = ()
        if not phonemes and self.animator is not None:
            poses = await engines.run(
                engines.audio_executor,
                lambda: tuple(poses_from_audio(pcm, AUDIO_RATE, fps=POSES_FPS)),
            )
        track = VisemeTrack(phonemes) if phonemes else VisemeTrack([])
        tag = self._tag(target)
        part = self._parts.setdefault(tag, _Playing(target))
        duration_ms = 1000.0 * len(pcm) / AUDIO_RATE
        step = AUDIO_RATE * SLICE_MS // 1000
        placed_at: float | None = None
        for offset in range(0, len(pcm), step):
            await self.track.wait_for_room(self.session.deps.limits.audio_lead_ms)
            if generation != self._generation or self.track.readyState != "live":
                return
            piece = pcm[offset : offset + step]
            start_ms = self.track.push(piece, tag) - 1000.0 * offset / AUDIO_RATE
            # Place the utterance where its first slice plays; again only if the track ran
            # dry in between and the rest now plays later than planned.
            if self.animator is not None and (placed_at is None or start_ms - placed_at > 1.0):
                self.animator.speak(
                    track,
                    start_ms=start_ms,
                    duration_ms=duration_ms,
                    poses=poses,
                    poses_fps=POSES_FPS,
                )
                placed_at = start_ms
            part.queued_samples += len(piece)
            ms = 1000.0 * len(piece) / AUDIO_RATE
            target.item.audio_ms += ms
            if not part.started:
                # Said when the audio enters the buffer (it plays within a frame): from here,
                # in the response's own flow, so it always comes before its response.done.
                part.started = True
                await self.session.emit(
                    {"type": "output_audio_buffer.started", "response_id": target.response_id}
                )

    async def finish(self, target: AudioTarget) -> None:
        """No more audio for this part: ``stopped`` follows once it has all played."""
        part = self._parts.get(self._tag(target))
        if part is None:
            return
        part.finished = True
        await self._maybe_stopped(self._tag(target), part)

    async def clear(self) -> None:
        """Cut off what is queued, truncate the item to what was heard, say ``cleared``."""
        self._generation += 1
        self.track.clear()
        if self.animator is not None:
            self.animator.interrupt(self.track.clock.now_ms())
        parts, self._parts = self._parts, {}
        for part in parts.values():
            if part.finished and part.played_samples >= part.queued_samples:
                continue  # already played out (and ``stopped`` was said)
            target = part.target
            played_ms = round(1000.0 * part.played_samples / AUDIO_RATE)
            if played_ms < round(target.item.audio_ms):
                await truncate_item(self.session, target.item, target.content_index, played_ms)
            await self.session.emit(
                {"type": "output_audio_buffer.cleared", "response_id": target.response_id}
            )

    # --- from the track ----------------------------------------------------------------------

    def _played(self, tag: Hashable, samples: int) -> None:
        """The track played ``samples`` of ``tag`` (called on the loop, from ``recv``)."""
        part = self._parts.get(tag)
        if part is None:
            return
        part.played_samples += samples
        if part.finished and part.played_samples >= part.queued_samples:
            self.session.spawn(self._maybe_stopped(tag, part), name="audio-stopped")

    async def _maybe_stopped(self, tag: Hashable, part: _Playing) -> None:
        if self._parts.get(tag) is not part or part.played_samples < part.queued_samples:
            return
        del self._parts[tag]
        if part.started:
            await self.session.emit(
                {"type": "output_audio_buffer.stopped", "response_id": part.target.response_id}
            )
