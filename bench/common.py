"""What the benchmarks share: percentiles and the results tables kept in bench/README.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, in the values' unit (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def write_readme_section(name: str, meta: dict[str, Any], body: str) -> None:
    """Replace (or append) the ``<!-- name:start/end -->`` block of bench/README.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = (
        f"{start}\nMeasured {meta['date']} on {meta['cpus']} CPUs "
        f"(load average before: {meta['loadavg_before'][0]:.2f}).\n\n{body}\n{end}"
    )
    text = README.read_text() if README.exists() else ""
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n" + block + "\n"
    README.write_text(text)
