"""``manage.py check`` reports LLM providers whose backend cannot be imported."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from apps.core.backends import BackendError, backend_class

from .base import LlmProvider


def check_providers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every configured provider's class imports and is an LlmProvider (no model is loaded)."""
    problems: list[CheckMessage] = []
    for name, entry in settings.AGENT_PROVIDERS.items():
        try:
            backend_class(entry, LlmProvider, name=f"AGENT_PROVIDERS[{name!r}]")
        except BackendError as exc:
            problems.append(
                Error(
                    str(exc),
                    hint="The embedded provider needs llama-cpp-python (make run installs it); "
                    "remote providers need only their base_url and key.",
                    id="agent.E001",
                )
            )
    return problems
