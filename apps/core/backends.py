"""Load pluggable backends named in settings, Django style (dotted path + OPTIONS).

Used for engines (VAD/ASR/TTS), LLM providers and the avatar renderer. A backend entry is
``{"BACKEND": "package.module.Class", "OPTIONS": {...}}``; the class must subclass the
interface it is loaded for, and is instantiated with ``**OPTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

T = TypeVar("T")


class BackendError(ImproperlyConfigured):
    """A backend entry in settings is missing, malformed or cannot be imported."""


def backend_class(entry: Mapping[str, Any], base: type[T], *, name: str) -> type[T]:
    """Import the class an entry names and check that it implements ``base``.

    Args:
        entry: The settings entry (``BACKEND`` and optional ``OPTIONS``).
        base: The interface the class must subclass.
        name: A label for error messages, e.g. ``AGENT_PROVIDERS['local']``.

    Raises:
        BackendError: The entry is malformed, the import fails, or the class is of the wrong kind.
    """
    path = entry.get("BACKEND")
    if not isinstance(path, str) or not path:
        raise BackendError(f"{name} needs a BACKEND dotted path")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise BackendError(f"{name}: cannot import {path}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise BackendError(f"{name}: {path} is not a subclass of {base.__qualname__}")
    return cls


def load_backend(entry: Mapping[str, Any], base: type[T], *, name: str) -> T:
    """Instantiate the backend an entry names with its ``OPTIONS``."""
    cls = backend_class(entry, base, name=name)
    options = entry.get("OPTIONS", {}) or {}
    if not isinstance(options, Mapping):
        raise BackendError(f"{name}: OPTIONS must be a mapping")
    try:
        return cls(**options)
    except TypeError as exc:
        raise BackendError(f"{name}: bad OPTIONS for {entry['BACKEND']}: {exc}") from exc
