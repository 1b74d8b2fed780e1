"""App config for voice."""

from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Voices and speech engines."""

    name = "apps.voice"
    label = "voice"
    verbose_name = "Voices"

    def ready(self) -> None:
        """Register the engine checks; forget loaded engines when tests change settings."""
        from django.core import checks
        from django.core.signals import setting_changed

        from . import engines
        from .checks import check_engines

        checks.register(check_engines, "voice")

        def on_change(*, setting: str, **_: object) -> None:
            if setting == "VOICE_ENGINES":
                engines.reset()

        setting_changed.connect(on_change, weak=False)
