"""glibc malloc tuning: big buffers freed after a burst go back to the system."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys
from apps.core.memory import release_free_memory, tune_malloc

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "tuned":
    assert tune_malloc()
# A burst: one 8 MiB block freed (glibc then raises its mmap threshold), then 3,000 frames
# of 64 KiB held at once and freed, as a flood of large events does.
big = bytearray(8 * 2**20)
del big
base = rss_mb()
frames = [bytearray(64 * 1024) for _ in range(3000)]
for frame in frames:
    frame[::4096] = b"x" * len(frame[::4096])
del frames
release_free_memory() if sys.argv[1] == "tuned" else None
print(round(rss_mb() - base, 1))
"""


def _left_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def test_a_freed_burst_is_returned_only_when_tuned() -> None:
    # Untuned, the 192 MiB of frames stay resident after they are freed; tuned, they go.
    assert _left_mb("untuned") > 100
    assert _left_mb("tuned") < 20
