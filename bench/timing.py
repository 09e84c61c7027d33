"""The timing loop the benchmarks share: one warm-up run, then ``repeat`` timed runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(function: Callable[[], object], repeat: int) -> dict[str, float]:
    """Median, min and max seconds of ``repeat`` runs of ``function`` after one warm-up run
    (first-call costs, such as allocations and a thread pool starting, are not the steady state)."""
    function()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}
