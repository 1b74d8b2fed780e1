"""``manage.py check`` reports a missing or broken speech engine with an id and a hint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from apps.core.backends import BackendError, backend_class

from .engines import KINDS


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
        try:
            backend_class(entry, KINDS[kind], name=f"VOICE_ENGINES[{kind!r}]")
        except BackendError as exc:
            problems.append(
                Error(
                    str(exc),
                    hint="Install the engines with `pip install -r requirements.txt` "
                    "(make run does), "
                    "or point the BACKEND at another engine.",
                    id="voice.E001",
                )
            )
    return problems
