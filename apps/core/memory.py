"""Giving memory back to the system after a burst (glibc malloc).

Python hands allocations over 512 bytes to malloc. glibc serves big ones with mmap and
returns them on free, but raises that threshold dynamically (up to 32 MiB) as soon as one
mmapped block is freed. After that, the big buffers of a burst (frames, base64 audio,
encoded replies) land on the heap, and the heap is not returned: a flood of large events
left hundreds of MB resident long after the client had gone. Fixing the thresholds keeps
big buffers on mmap; ``release_free_memory`` trims what the heap still holds.

Elsewhere than glibc these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks from this size on are mmapped (and unmapped on free); setting it explicitly also
# turns off glibc's dynamic raising of it.
MMAP_THRESHOLD_BYTES = 64 * 1024
# Free heap above this much at the top is returned to the system at once.
TRIM_THRESHOLD_BYTES = 1024 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False where unsupported."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    if not ok:
        logger.warning("mallopt refused the memory thresholds")
    return ok


def release_free_memory() -> bool:
    """Return free heap memory of every arena to the system (blocking; milliseconds)."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
