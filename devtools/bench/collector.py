"""The load generator's own garbage-collector pauses.

The generator is one Python process holding every simulated device's and dashboard's
connection. A collection stops its event loop: an ack or a dashboard frame that arrives
meanwhile is timed when the loop runs again, so the generator's pauses would be counted as
the server's latency. The benchmark reports them beside the latencies, and tunes the
generator's collector as the server tunes its own (``common.runtime.latency_tune``) before it
starts sending, unless asked to measure as an untuned client would.
"""

from __future__ import annotations

import gc
import time
from typing import Any

GENERATIONS = (0, 1, 2)


class CollectorPauses:
    """Times every collection of this process while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {g: [] for g in GENERATIONS}
        self._started: float | None = None

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)
            self._started = None

    def __enter__(self) -> CollectorPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def result(self) -> dict[str, dict[str, float | int]]:
        """Per generation: how many collections, their longest and their total (ms)."""
        return {
            f"generation_{g}": {
                "count": len(p),
                "max_ms": round(max(p, default=0.0) * 1000, 1),
                "total_ms": round(sum(p) * 1000, 1),
            }
            for g, p in self.pauses.items()
        }
