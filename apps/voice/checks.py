"""``manage.py check`` reports a missing or broken speech engine with an id and a hint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from apps.core.backends import BackendError, backend_class

from .engines import KINDS
from .tts.base import TtsEngine
from .tts.router import ScriptRouterTts


def check_engines(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every configured engine's class imports and is of the right kind (no model is loaded)."""
    problems: list[CheckMessage] = []
    for kind, entry in settings.VOICE_ENGINES.items():
        if kind not in KINDS:
            problems.append(
                Error(
                    f"VOICE_ENGINES has an unknown kind {kind!r}",
                    hint=f"Use one of {sorted(KINDS)}.",
                    id="voice.E002",
                )
            )
            continue
        problems.extend(_check_entry(entry, KINDS[kind], f"VOICE_ENGINES[{kind!r}]"))
    return problems


def _check_entry(entry: Any, base: type, name: str) -> list[CheckMessage]:
    try:
        cls = backend_class(entry, base, name=name)
    except BackendError as exc:
        return [
            Error(
                str(exc),
                hint="Install the engines with `pip install -r requirements.txt` (make run does), "
                "or point the BACKEND at another engine.",
                id="voice.E001",
            )
        ]
    options = entry.get("OPTIONS") or {}
    problems: list[CheckMessage] = []
    if issubclass(cls, ScriptRouterTts):
        for language, nested in (options.get("engines") or {}).items():
            problems.extend(_check_entry(nested, TtsEngine, f"{name}.engines[{language!r}]"))
    elif issubclass(cls, TtsEngine):
        missing = cls.missing_files(**options)
        if missing:
            # A warning, not an error: migrations and admin work without the model, and a
            # deployment may not need this language.
            problems.append(
                Warning(
                    f"{name}: model files are missing: {', '.join(missing)}",
                    hint="Run `make run` or `make test-deps`, which build them from the packages.",
                    id="voice.W003",
                )
            )
    return problems
