"""The LLM provider interface. Providers are named in ``settings.AGENT_PROVIDERS``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib import metadata
from typing import Any


class LlmProvider(ABC):
    """A source of chat models (embedded llama.cpp, an OpenAI-compatible endpoint, a script).

    Subclasses are instantiated with the ``OPTIONS`` of their settings entry. The streaming
    chat interface is added with the engines issue; this base fixes naming and listing so
    routing and ``/v1/models`` can rely on them.
    """

    #: Distribution whose version /healthz reports for this provider, if any.
    package: str | None = None

    @abstractmethod
    def models(self) -> list[str]:
        """Return the model ids this provider serves right now, default model first."""

    def describe(self) -> dict[str, Any]:
        """Return what /healthz shows about this provider (backend class and version)."""
        version = None
        if self.package:
            try:
                version = metadata.version(self.package)
            except metadata.PackageNotFoundError:
                version = None
        cls = type(self)
        return {"backend": f"{cls.__module__}.{cls.__qualname__}", "version": version}
