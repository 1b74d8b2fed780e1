"""App config for avatar."""

from django.apps import AppConfig


class AvatarConfig(AppConfig):
    """Characters and (later) their renderer."""

    name = "apps.avatar"
    label = "avatar"
    verbose_name = "Avatar"
