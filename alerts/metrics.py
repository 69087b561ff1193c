"""What the alarms export: alert transitions once committed (every process that makes them),
and the readings stream's backlog and evaluation lag (the evaluator's exporter collects them
at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.models import Alert, AlertEvent
from alerts.vocabulary import Action
from common import metrics
from monitoring.stream.lag import stream_lag


def alert_event_count(*, alert: Alert, event: AlertEvent) -> None:
    """Count one committed alert event (called after commit, so a rolled-back raise is not
    counted)."""
    metrics.ALERT_EVENTS.labels(action=event.action).inc()
    if event.action == Action.RAISED:
        metrics.ALERTS_RAISED.labels(kind=alert.kind, priority=alert.priority).inc()
    elif event.action == Action.ACKNOWLEDGED:
        waited = (event.at - alert.raised_at).total_seconds()
        metrics.ALERT_ACKNOWLEDGE_SECONDS.labels(priority=alert.priority).observe(max(0.0, waited))


class StreamBacklogCollector(Collector):
    """Per partition of the readings stream: readings waiting for evaluation (not yet read, or
    read and not acknowledged; what ``/readyz`` sums) and the stream's length. Read from Redis
    at each scrape (one pipelined round trip), the same for every evaluator that exports it."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily(
            "monitor_readings_awaiting_evaluation",
            "Readings-stream entries (each one append's readings of the partition) not yet "
            "evaluated by the alarm rules, per partition.",
            labels=["partition"],
        )
        length = GaugeMetricFamily(
            "monitor_readings_stream_length",
            "Entries in each readings-stream partition, evaluated or not (kept READINGS_STREAM_RETENTION_SECONDS).",
            labels=["partition"],
        )
        owned = GaugeMetricFamily(
            "monitor_readings_stream_partition_owned",
            "1 while an evaluator holds the partition's lease, 0 while nobody reads it.",
            labels=["partition"],
        )
        lag = GaugeMetricFamily(
            "monitor_evaluation_lag_seconds",
            "How long the oldest reading not yet evaluated has waited in each readings-stream "
            "partition (0 when none waits); /readyz compares it with "
            "READY_EVALUATION_LAG_SECONDS.",
            labels=["partition"],
        )
        for row in stream_lag():
            label = [str(row.partition)]
            waiting.add_metric(label, row.lag + row.pending)
            length.add_metric(label, row.length)
            owned.add_metric(label, 1 if row.owner else 0)
            lag.add_metric(label, row.waiting_seconds)
        yield waiting
        yield length
        yield owned
        yield lag
