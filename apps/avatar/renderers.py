"""The process's avatar renderer, loaded from ``settings.AVATAR_RENDERER`` on first use."""

from __future__ import annotations

import threading

from django.conf import settings

from apps.core.backends import load_backend

from .render.base import AvatarRenderer

_renderer: AvatarRenderer | None = None
_lock = threading.Lock()


def get_renderer() -> AvatarRenderer:
    """The shared renderer (``AVATAR_RENDERER``: dotted ``BACKEND`` plus ``OPTIONS``)."""
    global _renderer
    if _renderer is None:
        with _lock:
            if _renderer is None:
                _renderer = load_backend(
                    settings.AVATAR_RENDERER, AvatarRenderer, name="AVATAR_RENDERER"
                )
    return _renderer


def reset() -> None:
    """Forget the loaded renderer (tests that change the setting)."""
    global _renderer
    with _lock:
        _renderer = None
