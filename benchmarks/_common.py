"""Two helpers every benchmark script uses: timing and writing its JSON result."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["median_time", "write_json"]


def median_time(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``fn`` in seconds, and every time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    return path
