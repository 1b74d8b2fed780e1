"""Model routing: ``modelId`` (first provider that serves it) or ``modelId@provider``.

Providers come from ``settings.AGENT_PROVIDERS`` in their declared order. OpenAI's own
realtime model names (``settings.AGENT_MODEL_ALIASES`` patterns, e.g. ``gpt-realtime``) route
to the first provider's default model so stock clients work by changing only the base URL.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.backends import BackendError, load_backend

from .base import LlmProvider

logger = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """No configured provider serves the requested model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Route:
    """Where a model name goes: which provider, and the provider's own model id."""

    provider: str
    model: str

    @property
    def qualified(self) -> str:
        """``modelId@provider``."""
        return f"{self.model}@{self.provider}"


@functools.cache
def providers() -> dict[str, LlmProvider]:
    """Instantiate the configured providers once per process, in settings order.

    A provider that fails to load is logged and left out (``manage.py check`` reports it),
    so one broken remote provider does not take the others down.
    """
    loaded: dict[str, LlmProvider] = {}
    for name, entry in settings.AGENT_PROVIDERS.items():
        try:
            loaded[name] = load_backend(entry, LlmProvider, name=f"AGENT_PROVIDERS[{name!r}]")
        except BackendError:
            logger.exception("LLM provider failed to load", extra={"provider": name})
    return loaded


def on_setting_changed(*, setting: str, **_: Any) -> None:
    """Forget loaded providers when tests change the provider settings."""
    if setting in ("AGENT_PROVIDERS", "AGENT_MODEL_ALIASES"):
        providers.cache_clear()


def warm_up() -> threading.Thread:
    """Load every provider's model in a daemon thread; failures are logged, not raised."""

    def load_all() -> None:
        for name, provider in providers().items():
            try:
                provider.warm_up()
            except Exception:
                logger.exception("LLM provider failed to warm up", extra={"provider": name})

    thread = threading.Thread(target=load_all, name="llm-warm-up", daemon=True)
    thread.start()
    return thread


def available_routes() -> list[Route]:
    """Every (provider, model) pair that can be used now, in routing order."""
    routes: list[Route] = []
    for name, provider in providers().items():
        try:
            models = provider.models()
        except Exception:
            logger.exception("LLM provider failed to list models", extra={"provider": name})
            continue
        routes.extend(Route(provider=name, model=model) for model in models)
    return routes


def resolve_model(name: str | None) -> Route:
    """Route a requested model name; ``None``/empty picks the default route.

    Raises:
        UnknownModel: No provider serves it (the message says what is available).
    """
    routes = available_routes()
    if not routes:
        raise UnknownModel("No language model is configured on this server (AGENT_PROVIDERS).")
    if not name:
        return routes[0]
    model, sep, provider = name.rpartition("@")
    if sep:
        for route in routes:
            if route.model == model and route.provider.lower() == provider.lower():
                return route
        raise UnknownModel(f"The model `{name}` does not exist or you do not have access to it.")
    # A provider that serves the name itself wins over an alias (qwen-max goes to DashScope
    # when it is configured, and to the default model when it is not).
    for route in routes:
        if route.model == name:
            return route
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.AGENT_MODEL_ALIASES):
        return routes[0]
    raise UnknownModel(f"The model `{name}` does not exist or you do not have access to it.")
