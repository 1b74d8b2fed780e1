"""``manage.py say TEXT --out FILE.wav [--voice V] [--speed S]``: speak with a catalogue voice."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.wav import write_wav_mono
from apps.voice.catalogue import voice_spec
from apps.voice.engines import get_tts
from apps.voice.models import Voice


class Command(BaseCommand):
    """Synthesise speech into a WAV file."""

    help = "Speak TEXT with a voice from the catalogue into a WAV file."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("text")
        parser.add_argument("--out", required=True, help="WAV file to write.")
        parser.add_argument(
            "--voice", default="alloy", help="Voice slug (see /v1/realtime/voices)."
        )
        parser.add_argument("--speed", type=float, default=1.0, help="0.25 to 1.5.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Synthesise and write the file."""
        if not 0.25 <= options["speed"] <= 1.5:
            raise CommandError("--speed must be between 0.25 and 1.5")
        voice = Voice.objects.filter(slug=options["voice"], builtin=True, active=True).first()
        if voice is None:
            raise CommandError(
                f"unknown voice {options['voice']!r}; run seed_demo or add it in the admin"
            )
        chunks = list(
            get_tts().synthesize(options["text"], voice_spec(voice, speed=options["speed"]))
        )
        if not chunks:
            raise CommandError("nothing to say: the text has no words")
        rate = chunks[0].sample_rate
        samples = np.concatenate([chunk.samples for chunk in chunks])
        write_wav_mono(options["out"], samples, rate)
        self.stdout.write(
            f"{options['out']}: {len(samples) / rate:.2f} s at {rate} Hz, {len(chunks)} sentence(s)"
        )
