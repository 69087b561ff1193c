"""Latency figures."""

from __future__ import annotations

from collections.abc import Sequence

PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


def percentiles_ms(samples: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds (nearest rank) of samples in seconds."""
    if not samples:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)
    n = len(ordered)
    result: dict[str, float | None] = {}
    for name, p in PERCENTILES:
        rank = max(1, min(n, int(-(-p * n // 100))))
        result[name] = round(ordered[rank - 1] * 1000, 2)
    result["max"] = round(ordered[-1] * 1000, 2)
    return result
