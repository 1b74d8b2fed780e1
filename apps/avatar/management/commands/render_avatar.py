"""``manage.py render_avatar CHARACTER "TEXT" OUT.webm``: watch a character say something."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.avatar.models import Character
from apps.avatar.renderers import get_renderer
from apps.avatar.services import character_spec, render_speech, speech_from_chunks
from apps.avatar.webm import write_webm
from apps.voice.catalogue import voice_spec
from apps.voice.engines import get_tts
from apps.voice.models import Voice

LEAD_MS = 400.0


class Command(BaseCommand):
    """Render a character saying a sentence with the embedded TTS, audio muxed in."""

    help = "Render CHARACTER saying TEXT (embedded TTS, lip sync) into a WebM file (VP8 + Opus)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the arguments."""
        parser.add_argument("character", help="Character slug (characterName), e.g. girl2.")
        parser.add_argument("text")
        parser.add_argument("out", help="WebM file to write.")
        parser.add_argument("--voice", help="Voice slug (default: the character's voice).")
        parser.add_argument("--size", type=int, default=0, help="Frame width and height (even).")
        parser.add_argument("--fps", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        """Synthesise, animate, encode."""
        character = Character.objects.filter(slug=options["character"], active=True).first()
        if character is None:
            raise CommandError(f"unknown character {options['character']!r}; run seed_demo")
        voice = (
            Voice.objects.filter(slug=options["voice"], active=True).first()
            if options["voice"]
            else character.default_voice
        )
        if voice is None:
            raise CommandError("no voice: pass --voice or give the character a default voice")
        size = options["size"] or settings.AVATAR_SIZE
        fps = options["fps"] or settings.AVATAR_FPS
        if size % 2:
            raise CommandError("--size must be even")
        chunks = list(get_tts().synthesize(options["text"], voice_spec(voice)))
        if not chunks:
            raise CommandError("nothing to say: the text has no words")
        speech = speech_from_chunks(chunks)
        started = time.perf_counter()
        stream = get_renderer().stream(character_spec(character), width=size, height=size)
        prepared_s = time.perf_counter() - started
        frames = render_speech(stream, speech, fps=fps, lead_ms=LEAD_MS)
        count = write_webm(
            Path(options["out"]),
            frames,
            fps=fps,
            audio=speech.samples,
            sample_rate=speech.sample_rate,
            audio_start_ms=LEAD_MS,
        )
        timing = "phoneme timings" if speech.track is not None else "the audio (no timings)"
        self.stdout.write(
            f"{options['out']}: {count} frames at {fps} fps, {size}x{size}, "
            f"{len(speech.samples) / speech.sample_rate:.2f} s of speech; lips from {timing}; "
            f"character prepared in {prepared_s:.2f} s"
        )
