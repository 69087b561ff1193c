"""The Celery worker's metrics wiring: task outcomes, queue lengths on the real Redis broker,
and the multiprocess switch that must come before prometheus_client is imported (the live
test in operations/tests/test_metrics_live.py runs a real prefork worker)."""

from __future__ import annotations

import logging
import os

import pytest
import redis
from django.conf import settings as django_settings

from config import worker_metrics
from config.queue_metrics import QueueLengthCollector, queue_keys
from testing.metrics import metric_value


class _Task:
    name = "notifications.tasks.alert_event_notify"


@pytest.mark.parametrize("state", ["succeeded", "failed", "retried"])
def test_finished_tasks_are_counted_by_name_and_state(state):
    labels = {"task": _Task.name, "state": state}
    before = metric_value("monitor_celery_tasks_total", **labels)
    worker_metrics.task_finished(state)(sender=_Task())
    assert metric_value("monitor_celery_tasks_total", **labels) == before + 1


def test_queue_lengths_count_every_priority_on_the_broker(settings):
    settings.CELERY_BROKER_URL = django_settings.REDIS_URL
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = queue_keys("metrics-test")
    client.delete(*keys)
    client.rpush(keys[0], "a", "b")
    client.rpush(keys[2], "c")  # a message of priority 6
    try:
        (family,) = QueueLengthCollector(queues=["metrics-test"]).collect()
        assert [(s.labels, s.value) for s in family.samples] == [({"queue": "metrics-test"}, 3)]
    finally:
        client.delete(*keys)


def test_a_broker_other_than_redis_exports_no_queue_lengths(settings):
    settings.CELERY_BROKER_URL = "amqp://guest@127.0.0.1//"
    assert list(QueueLengthCollector(queues=["celery"]).collect()) == []


def test_multiprocess_mode_is_refused_once_prometheus_client_is_loaded(
    settings, monkeypatch, caplog
):
    """Switching it on then would leave the pool's values in memory nobody serves: the worker
    says so instead (in a real worker the switch runs before Django loads the apps)."""
    settings.METRICS_PORT = 9102
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with caplog.at_level(logging.ERROR, logger="config.worker_metrics"):
        worker_metrics.multiprocess_prepare()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert "prometheus_client was imported before" in caplog.text


def test_without_an_exporter_port_nothing_changes(settings, monkeypatch):
    settings.METRICS_PORT = 0
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    worker_metrics.multiprocess_prepare()
    worker_metrics.exporter_start()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
