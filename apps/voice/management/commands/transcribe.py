"""``manage.py transcribe FILE.wav [--language en|zh]``: the transcript alone on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.audio import resample
from apps.core.wav import read_wav_mono
from apps.voice.engines import get_asr


class Command(BaseCommand):
    """Transcribe a WAV file with the configured ASR engine."""

    help = "Transcribe a WAV file; the transcript is printed alone on the last line of stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("file")
        parser.add_argument(
            "--language", default=None, help="Force a language (en, zh…); default: detect."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read, resample to the engine rate, transcribe, print."""
        try:
            samples, rate = read_wav_mono(options["file"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        asr = get_asr()
        transcript = asr.transcribe(
            resample(samples, rate, asr.sample_rate), language=options["language"]
        )
        self.stdout.write(f"language: {transcript.language}, audio: {transcript.duration_ms} ms")
        self.stdout.write(transcript.text)
