"""The Celery queues' lengths on a Redis broker, read at each scrape of the worker's exporter."""

from __future__ import annotations

from collections.abc import Iterator

from celery import current_app
from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.redis_clients import redis_client_once

# kombu's Redis transport keeps a queue's messages of priority p > 0 in a list of their own.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_keys(queue: str) -> list[str]:
    return [queue if p == 0 else f"{queue}{_PRIORITY_SEPARATOR}{p}" for p in _PRIORITY_STEPS]


class QueueLengthCollector(Collector):
    """``monitor_celery_queue_length{queue}``: messages waiting in each queue the worker
    consumes (the default queue ``celery`` unless more are configured); nothing for a broker
    other than Redis."""

    def __init__(self, queues: list[str] | None = None) -> None:
        # The running worker's app (this project's, set current when config.celery made it).
        self.queues = queues or sorted(current_app.amqp.queues) or ["celery"]
        self.url = settings.CELERY_BROKER_URL

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            return
        family = GaugeMetricFamily(
            "monitor_celery_queue_length",
            "Messages waiting in a Celery queue on the broker (all priorities).",
            labels=["queue"],
        )
        client = redis_client_once(timeout=settings.REDIS_CHECK_TIMEOUT, url=self.url)
        try:
            pipe = client.pipeline(transaction=False)
            for queue in self.queues:
                for key in queue_keys(queue):
                    pipe.llen(key)
            lengths = pipe.execute()
        finally:
            client.close()
        steps = len(_PRIORITY_STEPS)
        for index, queue in enumerate(self.queues):
            family.add_metric([queue], sum(lengths[index * steps : (index + 1) * steps]))
        yield family
