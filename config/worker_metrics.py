"""The Celery worker's metrics: an exporter port in the worker's main process that serves what
its pool processes count (docs/operations.md, "Metrics").

Tasks run in the prefork pool's child processes, so the worker uses prometheus-client's
multiprocess mode: each process writes its values to files under ``PROMETHEUS_MULTIPROC_DIR``
and the exporter sums them. The mode is chosen when ``prometheus_client`` is first imported,
so :func:`multiprocess_prepare` runs on Celery's ``import_modules`` signal, ahead of the Django
fix-up that sets Django up there (the apps import the metrics); ``celeryd_init`` comes too late.
Nothing here imports ``prometheus_client`` at module level.

Beat only schedules and exports nothing (with ``METRICS_PORT`` set it makes a directory too).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def _directory() -> Path:
    return Path(settings.VAR_DIR) / "prometheus" / f"worker-{os.getpid()}"


def multiprocess_prepare(**_: Any) -> None:
    """``import_modules`` (worker start, before Django is set up): with an exporter port
    configured, switch multiprocess mode on for this worker and its pool (a fresh directory per
    worker start), unless the environment names a directory already."""
    if not settings.METRICS_PORT or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    if "prometheus_client" in sys.modules:
        logger.error(
            "metrics: prometheus_client was imported before the worker started; the pool's "
            "metrics will be missing (set PROMETHEUS_MULTIPROC_DIR in the environment)"
        )
        return
    directory = _directory()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def exporter_start(**_: Any) -> None:
    """``worker_ready`` (the main process, after the pool started): serve the metrics on
    ``METRICS_PORT``, with the broker's queue lengths read at each scrape."""
    if not settings.METRICS_PORT:
        return
    from common.metrics_http import metrics_exporter_start
    from config.queue_metrics import QueueLengthCollector

    try:
        metrics_exporter_start(port=settings.METRICS_PORT, extra=[QueueLengthCollector()])
    except OSError as exc:  # deliveries matter more than their metrics: run anyway
        logger.error("metrics exporter not started on port %d: %r", settings.METRICS_PORT, exc)


def multiprocess_cleanup(**_: Any) -> None:
    """``worker_shutdown``: remove the directory this worker made (not one the environment
    named)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and Path(directory) == _directory():
        shutil.rmtree(directory, ignore_errors=True)


def pool_process_exited(pid: int, **_: Any) -> None:
    """``worker_process_shutdown``: drop the live gauges of a pool process that exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def task_finished(state: str) -> Any:
    """A ``task_success`` / ``task_failure`` / ``task_retry`` receiver counting ``state``."""

    def receiver(sender: Any = None, request: Any = None, **_: Any) -> None:
        from common import metrics

        name = getattr(sender, "name", None) or getattr(request, "task", None) or "unknown"
        metrics.CELERY_TASKS.labels(task=name, state=state).inc()

    return receiver
