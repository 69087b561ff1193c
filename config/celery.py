from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

from celery import Celery, signals
from celery.signals import setup_logging, task_postrun, task_prerun

from common.logs import log_context_bind, log_context_reset
from config import worker_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# metrics: connected before the app exists, so that it runs before the Django fix-up (connected
# when the app is made) sets Django up and the apps import prometheus_client
# (config/worker_metrics.py).
signals.import_modules.connect(worker_metrics.multiprocess_prepare, weak=False)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# --- metrics: the worker's exporter port and task outcomes (config/worker_metrics.py) -------
signals.worker_ready.connect(worker_metrics.exporter_start, weak=False)
signals.worker_process_shutdown.connect(worker_metrics.pool_process_exited, weak=False)
signals.worker_shutdown.connect(worker_metrics.multiprocess_cleanup, weak=False)
signals.task_success.connect(worker_metrics.task_finished("succeeded"), weak=False)
signals.task_failure.connect(worker_metrics.task_finished("failed"), weak=False)
signals.task_retry.connect(worker_metrics.task_finished("retried"), weak=False)


@setup_logging.connect
def logging_from_settings(*, loglevel: int | str | None = None, **_: Any) -> None:
    """The worker and beat log like every other process (settings.LOGGING, LOG_FORMAT) instead
    of Celery's own format; ``-l`` still sets how much Celery itself says."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(
            loglevel.upper() if isinstance(loglevel, str) else loglevel
        )


_task_log_context: dict[str, Any] = {}


@task_prerun.connect
def task_log_context_bind(*, task_id: str, task: Any, **_: Any) -> None:
    """Every line a task logs carries its id and name."""
    _task_log_context[task_id] = log_context_bind(task_id=task_id, task_name=task.name)


@task_postrun.connect
def task_log_context_reset(*, task_id: str, **_: Any) -> None:
    token = _task_log_context.pop(task_id, None)
    if token is not None:
        log_context_reset(token)
