"""Background tasks nobody awaits, kept alive and never failing silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

# The event loop holds only weak references to tasks: one nobody references can be
# garbage-collected mid-flight. These are held here until they finish.
_running: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "background task failed", exc_info=task.exception(), extra={"task": task.get_name()}
        )


def fire_and_forget(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Run ``coro`` in its own task, keep it referenced until done, and log its failure."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    _running.add(task)
    task.add_done_callback(_done)
    return task
