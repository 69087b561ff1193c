"""Readiness checks: can this process do its work right now?

Each check answers "ok" or says what is wrong; a check that cannot run because another one
failed answers "skipped". Every network call has a short timeout, so a load balancer's probe
never hangs on a black-holed host.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection

from monitoring.realtime.stream import stream_lag

TIMEOUT_SECONDS = 1.0

Check = Callable[[], str]


def database_check() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _ping(url: str) -> str:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def redis_check() -> str:
    """The Redis of the cache, the readings stream, one-time codes and the Celery broker."""
    return _ping(settings.REDIS_URL)


def channel_layer_check() -> str:
    """Every Redis host of the channel layer answers (the in-memory layer always does)."""
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    for host in config.get("hosts", []):
        _ping(host if isinstance(host, str) else host["address"])
    return "ok"


def alarm_evaluator_check() -> str:
    """The alarm evaluators keep up: fewer than ``READY_EVALUATOR_MAX_BEHIND`` stored readings
    wait for evaluation (not yet read, or read and not acknowledged)."""
    behind = sum(row.lag + row.pending for row in stream_lag())
    if behind > settings.READY_EVALUATOR_MAX_BEHIND:
        return f"behind: {behind} readings wait for evaluation"
    return "ok"


CHECKS: dict[str, Check] = {
    "database": database_check,
    "redis": redis_check,
    "channel_layer": channel_layer_check,
    "alarm_evaluator": alarm_evaluator_check,
}
# A check that needs another one: skipped when that one failed.
NEEDS = {"alarm_evaluator": "redis"}


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check; ``(all ok, {check: "ok" | what is wrong | "skipped"})``."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        needed = NEEDS.get(name)
        if needed is not None and results.get(needed) != "ok":
            results[name] = "skipped"
            continue
        try:
            results[name] = check()
        except Exception as exc:  # any failure makes the process not ready, never a 500
            results[name] = f"error: {type(exc).__name__}"
    return all(value == "ok" for value in results.values()), results
