"""App config for the web pages."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    """End-user pages."""

    name = "apps.web"
    label = "web"
    verbose_name = "Web"
