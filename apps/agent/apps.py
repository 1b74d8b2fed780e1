"""App config for agent."""

from django.apps import AppConfig


class AgentConfig(AppConfig):
    """LLM providers and model routing."""

    name = "apps.agent"
    label = "agent"
    verbose_name = "Agent"

    def ready(self) -> None:
        """Drop cached providers whenever tests override the provider settings."""
        from django.core.signals import setting_changed

        from . import routing

        setting_changed.connect(routing.on_setting_changed)
