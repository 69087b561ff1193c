"""History aggregation: a day of readings, then the bucketed history request, timed."""

from __future__ import annotations

import http.client
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from devtools.bench.fixture import Fixture
from devtools.bench.stats import percentiles_ms


def history_fill(fixture: Fixture, *, hours: float = 24, rate: float = 4.0) -> tuple[int, float]:
    """Insert ``hours`` of readings at ``rate`` Hz for every fixture patient through
    readings_store, interleaved in time as a ward of monitors writes them (so one patient's
    rows are spread over the table's pages like in production). Returns (rows, seconds)."""
    from monitoring.readings import ReadingIn, readings_store

    per_device = int(hours * 3600 * rate)
    start = datetime.now(UTC) - timedelta(hours=hours)
    step = 1.0 / rate
    t0 = time.perf_counter()
    slice_len = max(1, 10_000 // len(fixture.devices))
    for first in range(0, per_device, slice_len):
        readings_store(
            readings=[
                ReadingIn(
                    patient_id=dev.patient_id,
                    device_id=dev.id,
                    metric=dev.metric,
                    value=(140 if dev.metric == "fetal_heart_rate" else 80) + (i * 7) % 11 - 5,
                    recorded_at=start + timedelta(seconds=i * step),
                    seq=i + 1,
                )
                for i in range(first, min(per_device, first + slice_len))
                for dev in fixture.devices
            ]
        )
    return per_device * len(fixture.devices), time.perf_counter() - t0


def history_run(
    fixture: Fixture,
    url: str,
    *,
    hours: float = 24,
    repeat: int = 5,
    query: str = "bucket=60&from={start}&to={end}",
) -> dict[str, Any]:
    """Fill the history, then time the bucketed GET (following ``next`` links) ``repeat`` times."""
    from django.db import connection

    inserted, fill_s = history_fill(fixture, hours=hours)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE monitoring_reading")
    dev = fixture.devices[0]
    end = datetime.now(UTC)
    start = end - timedelta(hours=hours)
    params = query.format(
        start=start.isoformat().replace("+00:00", "Z"), end=end.isoformat().replace("+00:00", "Z")
    )
    parsed = urlparse(url)
    assert parsed.hostname is not None, url
    timings: list[float] = []
    buckets = pages = 0
    status = 0
    sample: Any = None
    for _ in range(repeat):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        path: str | None = f"/api/records/{dev.patient_id}/?{params}"
        buckets = pages = 0
        t0 = time.perf_counter()
        while path:
            conn.request("GET", path, headers={"Authorization": f"Bearer {fixture.jwt}"})
            response = conn.getresponse()
            body = response.read()
            status = response.status
            pages += 1
            if status != 200:
                sample = body[:300].decode(errors="replace")
                break
            data = json.loads(body)
            items = data.get("results", data) if isinstance(data, dict) else data
            if sample is None and items:
                sample = items[0]
            buckets += len(items) if isinstance(items, list) else 0
            nxt = data.get("next") if isinstance(data, dict) else None
            path = None
            if nxt:
                n = urlparse(nxt)
                path = f"{n.path}?{n.query}"
        timings.append(time.perf_counter() - t0)
        conn.close()
    return {
        "mode": "history",
        "vendor": connection.vendor,
        "readings": inserted,
        "patients": len(fixture.devices),
        "readings_of_patient": inserted // len(fixture.devices),
        "fill_seconds": round(fill_s, 1),
        "fill_readings_per_s": round(inserted / fill_s, 1),
        "status": status,
        "buckets": buckets,
        "pages": pages,
        "first_bucket": sample,
        "ms_first": round(timings[0] * 1000, 1),
        "ms": percentiles_ms(timings[1:] or timings),
        "all_ms": [round(t * 1000, 1) for t in timings],
    }
