from __future__ import annotations

import os

from celery import Celery, signals

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
