"""``manage.py render_avatar``: a character says a sentence into a WebM anyone can watch."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import av
import pytest
from django.core.management import CommandError, call_command

from apps.avatar.models import Character
from apps.avatar.render.drawn import DrawnRenderer
from apps.avatar.renderers import get_renderer, reset

pytestmark = pytest.mark.django_db


@pytest.fixture
def character(voices: dict[str, Any]) -> Character:
    return Character.objects.create(
        slug="ava",
        display_name="Ava",
        default_voice=voices["alloy"],
        look={"hair_style": "bob", "face_shape": "heart"},
    )


def test_it_writes_vp8_and_opus_with_the_lips_moving_only_while_speaking(
    character: Character, tmp_path: Path
) -> None:
    out = tmp_path / "ava.webm"
    stdout = StringIO()
    # The test settings' FakeTts times one "phoneme" per character, 60 ms each.
    call_command("render_avatar", "ava", "Hello, bob!", str(out), "--size", "128", stdout=stdout)
    assert "lips from phoneme timings" in stdout.getvalue()
    with av.open(str(out)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds == {"video": "vp8", "audio": "opus"}
        frames = [f.to_ndarray(format="gray")[60:84, 48:80] for f in container.decode(video=0)]
    with av.open(str(out)) as container:
        audio_s = sum(f.samples for f in container.decode(audio=0)) / 48_000
    speech_s = len("Hello, bob!") * 0.06
    assert abs(len(frames) / 25 - (0.4 + speech_s + 0.6)) < 0.1
    assert abs(audio_s - (0.4 + speech_s)) < 0.1
    # An open mouth shows its dark inside; a closed one does not (whatever the head does).
    inside = [int((f < 55).sum()) for f in frames]
    lead, words, tail = inside[:8], inside[11:26], inside[-8:]
    rest = max(lead)  # the line between closed lips
    assert max(tail) <= rest + 2
    assert max(words) > rest + 20


def test_unknown_characters_and_odd_sizes_are_refused(character: Character, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown character"):
        call_command("render_avatar", "nobody", "hi", str(tmp_path / "x.webm"))
    with pytest.raises(CommandError, match="even"):
        call_command("render_avatar", "ava", "hi", str(tmp_path / "x.webm"), "--size", "129")


def test_the_renderer_comes_from_settings(settings: Any) -> None:
    reset()
    try:
        assert isinstance(get_renderer(), DrawnRenderer)
        settings.AVATAR_RENDERER = {"BACKEND": "apps.voice.tts.fake.FakeTts"}
        reset()
        with pytest.raises(Exception, match="AVATAR_RENDERER"):
            get_renderer()
    finally:
        settings.AVATAR_RENDERER = {"BACKEND": "apps.avatar.render.drawn.DrawnRenderer"}
        reset()
