"""REST batches: threads POST readings to /api/records/ with device tokens."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from devtools.bench.fixture import Fixture, fixture_counts
from devtools.bench.sampler import ResourceSampler
from devtools.bench.stats import percentiles_ms


def rest_run(
    fixture: Fixture,
    urls: Sequence[str],
    *,
    batch: int,
    clients: int,
    duration: float,
    pids: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Threads POST batches of ``batch`` readings to /api/records/ with device tokens."""
    sampler = ResourceSampler(pids)
    lock = threading.Lock()
    totals = {"requests": 0, "accepted": 0, "failed": 0}
    latencies: list[float] = []
    failures: list[str] = []
    devices = fixture.devices

    def worker(index: int) -> None:
        url = urlparse(urls[index % len(urls)])
        assert url.hostname is not None, url
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        mine = devices[index::clients] or devices[:1]
        seqs = {d.id: 1 for d in mine}
        n = 0
        while time.perf_counter() < stop_at:
            dev = mine[n % len(mine)]
            n += 1
            first = seqs[dev.id]
            seqs[dev.id] += batch
            base = datetime.now(UTC) - timedelta(seconds=batch / 4)
            body = json.dumps(
                [
                    {
                        "metric": dev.metric,
                        "bpm": 140 if dev.metric == "fetal_heart_rate" else 80,
                        "recorded_at": (base + timedelta(seconds=i / 4)).isoformat(),
                        "seq": first + i,
                    }
                    for i in range(batch)
                ]
            )
            t0 = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    "/api/records/",
                    body=body,
                    headers={
                        "Authorization": f"Device {dev.token}",
                        "Content-Type": "application/json",
                    },
                )
                response = conn.getresponse()
                payload = response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException) as exc:
                ok, payload = False, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            with lock:
                totals["requests"] += 1
                latencies.append(time.perf_counter() - t0)
                if ok:
                    totals["accepted"] += batch
                else:
                    totals["failed"] += 1
                    if len(failures) < 3:
                        failures.append(payload[:300].decode(errors="replace"))
        conn.close()

    sampler.start()
    start = time.perf_counter()
    stop_at = start + duration
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        if progress:
            progress(
                f"REST {time.perf_counter() - start:5.0f}/{duration:.0f} s  "
                f"requests {totals['requests']}  accepted {totals['accepted']}"
            )
    elapsed = time.perf_counter() - start
    resources = sampler.stop()
    counts = fixture_counts(fixture)
    return {
        "mode": "rest",
        "batch": batch,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": totals["requests"],
        "failed_requests": totals["failed"],
        "failure_samples": failures,
        "sent": totals["requests"] * batch,
        "accepted": totals["accepted"],
        "stored": counts["stored"],
        "duplicates_stored": counts["duplicates_stored"],
        "readings_per_s": round(counts["stored"] / elapsed, 1),
        "request_ms": percentiles_ms(latencies),
        "server": resources,
    }
