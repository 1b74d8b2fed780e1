"""App config for realtime."""

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The realtime protocol and sessions."""

    name = "apps.realtime"
    label = "realtime"
    verbose_name = "Realtime"
