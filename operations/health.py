"""Readiness checks: can this process do its work right now?

Each check answers "ok" or says what is wrong; a check that cannot run because another one
failed answers "skipped". Every network call has a short timeout, so a load balancer's probe
never hangs on a black-holed host.

Redis is not needed to store readings and ack them (PostgreSQL is the durable store; the
live fan-out, presence and the alarm stream degrade and catch up, ``monitoring.live.
feed``): a process whose only failing checks are the :data:`DEGRADABLE` ones is still
ready, answered ``degraded`` (200, so a load balancer keeps sending it devices), with the
failing checks named. Anything else failing makes it ``unavailable`` (503).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from common.redis_clients import redis_client_once
from monitoring.stream.backlog import stream_backlog_size
from monitoring.stream.lag import stream_lag
from notifications.selectors import deliveries_failed, deliveries_overdue

Check = Callable[[], str]


def database_check() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _ping(url: str) -> str:
    client = redis_client_once(timeout=settings.REDIS_CHECK_TIMEOUT, url=url)
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
    """The alarm evaluators keep up: no stored reading has waited in the stream for evaluation
    (not yet read, or read and not acknowledged) longer than ``READY_EVALUATION_LAG_SECONDS``."""
    rows = stream_lag()
    waited = max((row.waiting_seconds for row in rows), default=0.0)
    if waited > settings.READY_EVALUATION_LAG_SECONDS:
        behind = sum(row.lag + row.pending for row in rows)
        return f"behind: readings wait {waited:.1f} s for evaluation ({behind} stream entries)"
    return "ok"


def stream_backlog_check() -> str:
    """No stored reading waits in the database for the readings stream (they are deferred
    there while Redis is away, and queued for evaluation once it answers)."""
    waiting = stream_backlog_size()
    if waiting:
        return f"deferred: {waiting} stored readings wait to be queued for alarm evaluation"
    return "ok"


def deliveries_check() -> str:
    """Alarm pages go out: none failed for good within ``NOTIFICATION_FAILED_READY_SECONDS``
    and none has waited, due, for longer than ``NOTIFICATION_OVERDUE_SECONDS`` (no worker,
    beat or broker works the outbox). Either is "degraded": this process still works."""
    since = timezone.now() - timedelta(seconds=settings.NOTIFICATION_FAILED_READY_SECONDS)
    failed = list(deliveries_failed(since=since)[:2])
    if failed:
        latest = failed[0]
        return f"failed: alarm page to {latest.recipient} ({latest.channel}) could not be delivered"
    overdue = deliveries_overdue(late=settings.NOTIFICATION_OVERDUE_SECONDS)
    if overdue:
        return f"overdue: {overdue} alarm deliveries wait to be sent"
    return "ok"


CHECKS: dict[str, Check] = {
    "database": database_check,
    "redis": redis_check,
    "channel_layer": channel_layer_check,
    "alarm_evaluator": alarm_evaluator_check,
    "stream_backlog": stream_backlog_check,
    "deliveries": deliveries_check,
}
# A check that needs another one: skipped when that one failed.
NEEDS = {"alarm_evaluator": "redis", "stream_backlog": "database", "deliveries": "database"}
# Checks whose failure leaves the process able to store and ack readings: "degraded".
DEGRADABLE = frozenset(
    {"redis", "channel_layer", "alarm_evaluator", "stream_backlog", "deliveries"}
)
# A degradable check that fails for its own reason (not Redis being away) still fails.
_FAILS_ALONE = {"alarm_evaluator"}


def readiness() -> tuple[str, dict[str, str]]:
    """Run every check; ``("ok" | "degraded" | "unavailable", {check: "ok" | what is wrong |
    "skipped"})``."""
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
    return readiness_status(results), results


def readiness_status(results: dict[str, str]) -> str:
    """``ok`` when every check is; ``degraded`` when only Redis and what hangs on it fail
    (an evaluator that is merely behind while Redis answers is no degradation: it fails);
    ``unavailable`` otherwise."""
    failing = {name for name, value in results.items() if value != "ok"}
    if not failing:
        return "ok"
    redis_away = results.get("redis", "ok") != "ok" or results.get("channel_layer", "ok") != "ok"
    tolerated = DEGRADABLE if redis_away else DEGRADABLE - _FAILS_ALONE
    return "degraded" if failing <= tolerated else "unavailable"
