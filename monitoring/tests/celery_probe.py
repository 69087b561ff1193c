"""A Celery task for the publishing test: a real worker imports it with ``-I``."""

from __future__ import annotations

from celery import shared_task

from monitoring.live.layer import groups_send_sync


@shared_task(name="monitoring.tests.publish_probe")
def publish_probe(group: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        groups_send_sync([(group, {"type": "probe", "n": n})], raise_errors=True)
