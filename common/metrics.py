"""The server's Prometheus metrics: every family defined once, here, at the lowest rung, so that
any app can count without importing a higher one (docs/operations.md, "Metrics").

Families are process-local (prometheus-client's default registry): each process exposes its own
(a web process on ``/metrics``, the evaluator and the Celery worker on an exporter port; see
``common.metrics_http``). Where a process forks workers (the Celery prefork pool) the values
live in files under ``PROMETHEUS_MULTIPROC_DIR`` instead, chosen by prometheus-client when it
is first imported; the gauges say how their per-process values combine.

Hot paths count once per batch, not once per reading: a flush increments the ingested counter
by its row count and observes the flush histogram once.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The ``*_created`` series (a timestamp per counter) only double the output here.
disable_created_metrics()

# Where readings come from: the ``path`` label of the ingest families.
INGEST_PATHS = ("ws", "rest", "hl7")
WS_KINDS = ("device", "dashboard")

_SECONDS_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SECONDS_SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# --- Ingest ---------------------------------------------------------------------------------

READINGS_INGESTED = Counter(
    "monitor_readings_ingested",
    "Readings stored now (new rows), by ingest path (ws, rest, hl7).",
    ["path"],
)
READINGS_DUPLICATE = Counter(
    "monitor_readings_duplicate",
    "Readings received again and acknowledged without a second row (resends), by ingest path.",
    ["path"],
)
READINGS_REJECTED = Counter(
    "monitor_readings_rejected",
    "Readings refused and not stored (the sender must not resend them), by error code.",
    ["code"],
)
INGEST_FLUSH_SECONDS = Histogram(
    "monitor_ingest_flush_seconds",
    "Time to store one ingest batch: the INSERT, the readings-stream XADD and the COMMIT.",
    buckets=_SECONDS_FAST,
)
INGEST_FLUSH_READINGS = Histogram(
    "monitor_ingest_flush_readings",
    "Readings offered per ingest batch (one batcher flush, REST request or HL7 message).",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000),
)
INGEST_FLUSH_FAILURES = Counter(
    "monitor_ingest_flush_failures",
    "Ingest batches that could not be stored (nothing of them acked), by ingest path.",
    ["path"],
)
INGEST_ACK_SECONDS = Histogram(
    "monitor_ingest_ack_seconds",
    "Time from a device frame's readings reaching the ingest batcher until its ack is "
    "released (stored, queued for alarm evaluation, broadcast).",
    buckets=_SECONDS_SLOW,
)

# --- Web process ----------------------------------------------------------------------------

WS_CONNECTIONS = Gauge(
    "monitor_ws_connections",
    "Open WebSocket connections of this process, by kind (device, dashboard).",
    ["kind"],
    multiprocess_mode="livesum",
)
EVENT_LOOP_LAG = Gauge(
    "monitor_event_loop_lag_seconds",
    "The largest overshoot of a 0.5 s sleep on this process's event loop in the last 10 s.",
    multiprocess_mode="livemax",
)
CHANNEL_LAYER_SEND_FAILURES = Counter(
    "monitor_channel_layer_send_failures",
    "Group messages the channel layer did not take (live frames lost; dashboards resynchronise "
    "from the next snapshot).",
)
CHANNEL_LAYER_OVER_CAPACITY = Counter(
    "monitor_channel_layer_over_capacity",
    "Group sends in which the channel layer dropped the message for at least one connection "
    "over capacity (a dashboard that fell behind).",
)

# --- Alarms ---------------------------------------------------------------------------------

ALERTS_RAISED = Counter(
    "monitor_alerts_raised",
    "Alerts raised (committed), by kind and priority.",
    ["kind", "priority"],
)
ALERT_EVENTS = Counter(
    "monitor_alert_events",
    "Alert lifecycle events committed, by action (raised, updated, acknowledged, resolved, "
    "escalated).",
    ["action"],
)
ALERT_ACKNOWLEDGE_SECONDS = Histogram(
    "monitor_alert_acknowledge_seconds",
    "Time from raising an alert to its acknowledgement by a person, by priority.",
    ["priority"],
    buckets=(5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
EVALUATOR_READINGS = Counter(
    "monitor_evaluator_readings",
    "Readings evaluated by the alarm rules in this evaluator.",
)
EVALUATOR_BATCH_SECONDS = Histogram(
    "monitor_evaluator_batch_seconds",
    "Time to evaluate one partition batch of the readings stream (rules and alert writes).",
    buckets=_SECONDS_FAST,
)
EVALUATION_STREAM_RESETS = Counter(
    "monitor_evaluation_stream_resets",
    "Readings-stream partitions whose consumer group an evaluator found gone although it had "
    "evaluated them (Redis restarted empty or flushed), or standing before what it had "
    "evaluated (restored from an older snapshot): their readings since the checkpoint were "
    "evaluated from the database.",
)
ALARM_STATE_RESETS = Counter(
    "monitor_alarm_state_resets",
    "Times an evaluator found the alarm rule state in Redis lost (Redis restarted empty or "
    "flushed) and rebuilt it from the stored readings and the open alerts.",
)
EVALUATOR_BATCH_FAILURES = Counter(
    "monitor_evaluator_batch_failures",
    "Partition batches whose evaluation failed (their entries stay pending and are retried).",
)
EVALUATION_DELAY_SECONDS = Histogram(
    "monitor_evaluation_delay_seconds",
    "Time from storing a reading to evaluating it (the oldest reading of each batch): how "
    "late an alarm can be.",
    buckets=(*_SECONDS_SLOW, 120.0, 300.0, 900.0),
)

# --- Delivery (Celery worker) ---------------------------------------------------------------

ALERT_DELIVERIES = Counter(
    "monitor_alert_deliveries",
    "Delivery attempts of an alert event to one recipient, by channel (email, webhook, hl7) "
    "and outcome (sent, failed; gave_up: failed for good, a technical alarm raised).",
    ["channel", "outcome"],
)
CELERY_TASKS = Counter(
    "monitor_celery_tasks",
    "Celery tasks finished in this worker, by task name and state (succeeded, failed, retried).",
    ["task", "state"],
)

# Every label value known in advance is exported from the start (as 0), so that ``rate()``
# and ``absent()`` see the series before the first event; the hot path keeps the children
# (``labels()`` takes a lock and builds a key on every call).
_INGESTED = {path: READINGS_INGESTED.labels(path=path) for path in INGEST_PATHS}
_DUPLICATE = {path: READINGS_DUPLICATE.labels(path=path) for path in INGEST_PATHS}
for _path in INGEST_PATHS:
    INGEST_FLUSH_FAILURES.labels(path=_path)
for _kind in WS_KINDS:
    WS_CONNECTIONS.labels(kind=_kind)


def ingest_flush_observe(*, path: str, offered: int, stored: int, seconds: float) -> None:
    """One stored batch: the ingested and duplicate counters, the flush histograms."""
    ingested = _INGESTED.get(path) or READINGS_INGESTED.labels(path=path)
    ingested.inc(stored)
    if offered > stored:
        (_DUPLICATE.get(path) or READINGS_DUPLICATE.labels(path=path)).inc(offered - stored)
    INGEST_FLUSH_SECONDS.observe(seconds)
    INGEST_FLUSH_READINGS.observe(offered)
