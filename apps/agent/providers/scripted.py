"""A scripted provider for tests: serves the model names it is given and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from ..base import LlmProvider


class ScriptedLlm(LlmProvider):
    """Test double that lists configured model names; replies are scripted per test."""

    def __init__(self, models: Sequence[str] = ("scripted",)) -> None:
        if not models:
            raise ValueError("ScriptedLlm needs at least one model name")
        self._models = list(models)

    def models(self) -> list[str]:
        """Return the configured model names."""
        return list(self._models)
