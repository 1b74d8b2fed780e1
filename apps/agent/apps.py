"""App config for agent."""

from django.apps import AppConfig


class AgentConfig(AppConfig):
    """LLM providers and model routing."""

    name = "apps.agent"
    label = "agent"
    verbose_name = "Agent"

    def ready(self) -> None:
        """Register the provider checks; drop cached providers when tests change settings."""
        from django.core import checks
        from django.core.signals import setting_changed

        from . import routing
        from .checks import check_providers

        checks.register(check_providers, "agent")
        setting_changed.connect(routing.on_setting_changed)
