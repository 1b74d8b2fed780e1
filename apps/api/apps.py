"""App config for the HTTP API."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """OpenAI-shaped HTTP endpoints."""

    name = "apps.api"
    label = "api"
    verbose_name = "HTTP API"
