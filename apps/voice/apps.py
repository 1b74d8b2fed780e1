"""App config for voice."""

from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Voices and (later) speech engines."""

    name = "apps.voice"
    label = "voice"
    verbose_name = "Voices"
