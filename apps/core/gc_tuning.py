"""Keep the garbage collector's full passes off the realtime path.

A loaded server holds a few hundred thousand long-lived objects (Django, models, engines).
CPython's full collections walk all of them: 40–90 ms pauses every few seconds under load
(bench/load.py saw them behind most of its slow probes). Moving what exists after start-up
into the permanent generation (``gc.freeze``) takes those objects out of every later pass;
reference cycles made afterwards are still collected as usual.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def freeze_startup_objects(reason: str) -> None:
    """Collect once, then freeze every object that survived (call after loading things)."""
    gc.collect()
    gc.freeze()
    logger.info("gc frozen", extra={"reason": reason, "frozen": gc.get_freeze_count()})
