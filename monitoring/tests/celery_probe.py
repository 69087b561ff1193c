"""A Celery task for the publishing test: a real worker imports it with ``-I``."""

from __future__ import annotations

from celery import shared_task

from monitoring.live.publish import live_publish


@shared_task(name="monitoring.tests.publish_probe")
def publish_probe(group: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        live_publish([(group, {"type": "probe", "n": n})], raise_errors=True)
