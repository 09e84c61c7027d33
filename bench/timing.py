"""What the benchmarks share: the timing loop (one warm-up run, then ``repeat`` timed runs) and
the peak-memory sampler of the app's process."""

from __future__ import annotations

import statistics
import threading
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


class PeakRss(threading.Thread):
    """The peak resident memory, in MB, of one process (the app), sampled every ``every``
    seconds until ``running`` is set False or the process is gone."""

    def __init__(self, pid: int, *, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.running = pid, every, 0.0, True

    def run(self) -> None:
        import psutil

        try:
            process = psutil.Process(self.pid)
            while self.running:
                self.peak = max(self.peak, process.memory_info().rss / 2**20)
                time.sleep(self.every)
        except psutil.Error:
            return
