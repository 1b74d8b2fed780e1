"""App config for licensing."""

from django.apps import AppConfig


class LicensingConfig(AppConfig):
    """Licenses and ephemeral client secrets."""

    name = "apps.licensing"
    label = "licensing"
    verbose_name = "Licensing"
