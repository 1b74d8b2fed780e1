"""One module per protocol area; importing this package registers every handler."""

from __future__ import annotations

from . import conversation, input_audio, response, session  # noqa: F401 - they register
from .registry import HANDLERS

__all__ = ["HANDLERS"]
