"""From a stored character to what a renderer needs, and a character saying a text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from apps.voice.tts.base import Phoneme, SpeechChunk

from .life import Animator
from .lipsync import VisemeTrack, poses_from_audio
from .look import full_look
from .models import Character
from .render.base import AvatarStream, CharacterSpec, FacePoints, I420Frame

logger = logging.getLogger(__name__)


def face_points(data: dict[str, Any]) -> FacePoints | None:
    """Stored face points (``Character.face_points``) as ``FacePoints``; None if incomplete."""
    try:
        return FacePoints(
            left_eye=(float(data["left_eye"][0]), float(data["left_eye"][1])),
            right_eye=(float(data["right_eye"][0]), float(data["right_eye"][1])),
            mouth=(float(data["mouth"][0]), float(data["mouth"][1])),
            mouth_width=float(data["mouth_width"]),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def face_points_data(points: FacePoints) -> dict[str, Any]:
    """``FacePoints`` as stored in ``Character.face_points``."""
    return {
        "left_eye": list(points.left_eye),
        "right_eye": list(points.right_eye),
        "mouth": list(points.mouth),
        "mouth_width": points.mouth_width,
    }


def character_spec(character: Character) -> CharacterSpec:
    """The renderer's view of ``character`` (its version changes with every save).

    A character with a portrait and face points is a portrait character; without points
    (never saved through the admin's check) it falls back to being drawn.
    """
    points = face_points(character.face_points or {})
    portrait = Path(character.portrait.path) if character.portrait and points else None
    if portrait is not None and not portrait.is_file():
        # The media file is gone (a restore without media, a cleaned volume): say so, and
        # show the character drawn rather than fail every call that uses it.
        logger.warning(
            "portrait file missing; drawing the character instead", extra={"slug": character.slug}
        )
        portrait = None
    return CharacterSpec(
        slug=character.slug,
        look=full_look(character.look),
        portrait=portrait,
        face=points if portrait else None,
        version=character.updated_at.isoformat() if character.updated_at else "",
    )


@dataclass(frozen=True, slots=True)
class Speech:
    """What a character says: the audio as played, at one rate, and its phoneme track."""

    samples: np.ndarray
    sample_rate: int
    phonemes: tuple[Phoneme, ...]
    """The chunks' phoneme timings on the utterance's clock (ms from its first sample)."""
    track: VisemeTrack | None
    """None when the engine gave no timings (the mouth then follows the audio)."""


def speech_from_chunks(chunks: list[SpeechChunk]) -> Speech:
    """Join a TTS's chunks (one sentence each) into one utterance with one phoneme track."""
    if not chunks:
        raise ValueError("no speech")
    rate = chunks[0].sample_rate
    if any(chunk.sample_rate != rate for chunk in chunks):
        raise ValueError("the chunks of one utterance must share a sample rate")

    phonemes: list[Phoneme] = []
    offset_ms = 0.0
    timed = all(chunk.phonemes for chunk in chunks)
    for chunk in chunks:
        phonemes += [
            Phoneme(p.symbol, p.start_ms + offset_ms, p.duration_ms) for p in chunk.phonemes
        ]
        offset_ms += chunk.duration_ms
    samples = np.concatenate([chunk.samples for chunk in chunks]).astype(np.int16)
    return Speech(samples, rate, tuple(phonemes), VisemeTrack(phonemes) if timed else None)


def render_speech(
    stream: AvatarStream,
    speech: Speech,
    *,
    fps: int,
    lead_ms: float = 400.0,
    tail_ms: float = 600.0,
    seed: int = 0,
) -> Iterator[I420Frame]:
    """Frames of the character saying ``speech``, starting ``lead_ms`` before it.

    The frames are yielded as rendered; each is only valid until the next one.
    """
    animator = Animator(seed=seed)
    duration_ms = 1000.0 * len(speech.samples) / speech.sample_rate
    if speech.track is not None:
        animator.speak(speech.track, start_ms=lead_ms, duration_ms=duration_ms)
        audio_poses = None
    else:
        animator.speak(VisemeTrack([]), start_ms=lead_ms, duration_ms=duration_ms)
        audio_poses = poses_from_audio(speech.samples, speech.sample_rate, fps=fps)
    total = int((lead_ms + duration_ms + tail_ms) / 1000.0 * fps)
    for k in range(total):
        t_ms = 1000.0 * k / fps
        state = animator.state(t_ms)
        if audio_poses is not None:
            index = int((t_ms - lead_ms) / 1000.0 * fps)
            mouth = audio_poses[index] if 0 <= index < len(audio_poses) else state.mouth
            state = replace(state, mouth=mouth)
        yield stream.render(state)
