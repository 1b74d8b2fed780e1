"""Preview frames for the admin: a character saying a short looping demo line."""

from __future__ import annotations

from typing import BinaryIO

from PIL import Image

from apps.voice.tts.base import Phoneme

from .life import Animator
from .lipsync import VisemeTrack
from .models import Character
from .renderers import get_renderer
from .services import character_spec

# "Hello, nice to meet you." in espeak phonemes, 85 ms each, then a pause: 4 s a loop.
DEMO = "h ə l ˈoʊ n aɪ s t uː m iː t j uː".split()
PHONEME_MS = 85.0
LOOP_MS = 4000.0
START_MS = 600.0


def preview_png(character: Character, *, t_ms: float, size: int, out: BinaryIO) -> None:
    """Write the frame at ``t_ms`` (looping every 4 s; blinks follow the real clock)."""
    stream = get_renderer().stream(character_spec(character), width=size, height=size)
    track = VisemeTrack([Phoneme(s, i * PHONEME_MS, PHONEME_MS) for i, s in enumerate(DEMO)])
    animator = Animator(seed=character.pk or 0)
    loop_start = t_ms - (t_ms % LOOP_MS)
    animator.speak(track, start_ms=loop_start + START_MS)
    frame = stream.render(animator.state(t_ms))
    Image.fromarray(frame.to_rgb()).save(out, format="PNG", optimize=False)
