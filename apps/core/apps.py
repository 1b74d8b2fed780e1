"""App config for the shared helpers."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Registers the core helpers (no models)."""

    name = "apps.core"
    label = "core"
