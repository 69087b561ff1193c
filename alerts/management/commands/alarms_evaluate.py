"""``manage.py alarms_evaluate``: the alarm evaluator process, reading the readings stream.

Runs until SIGTERM or SIGINT, then gives its partitions back so another evaluator takes them at
once. Run one or more (up to ``READINGS_STREAM_PARTITIONS``), on any machine that reaches Redis
and the database; they share the partitions between them (monitoring/stream/entries.py).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from alerts.evaluator_process import evaluate_pending, evaluator_run
from alerts.metrics import StreamBacklogCollector
from alerts.stream_reader import consumer_name_default
from common.metrics_http import metrics_exporter_start

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Evaluate the alarm rules on the readings stream until stopped (SIGTERM/SIGINT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--block-ms",
            type=int,
            default=1000,
            help="How long one read waits for new readings (bounds how long a stop takes).",
        )
        parser.add_argument(
            "--consumer",
            default=consumer_name_default(),
            help="This evaluator's name in the consumer group (default: hostname-pid).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.METRICS_PORT,
            help="Serve this evaluator's metrics on this port (METRICS_ADDR; default "
            "METRICS_PORT; 0: no exporter).",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Evaluate what is in the stream now, then exit.",
        )

    def handle(
        self,
        *args: Any,
        block_ms: int,
        consumer: str,
        once: bool,
        metrics_port: int,
        **options: Any,
    ) -> None:
        if metrics_port and not once:
            try:
                metrics_exporter_start(port=metrics_port, extra=[StreamBacklogCollector()])
            except OSError as exc:  # alarms matter more than their metrics: evaluate anyway
                logger.error("metrics exporter not started on port %d: %r", metrics_port, exc)
        if once:
            count = evaluate_pending(consumer=consumer)
            self.stdout.write(f"Evaluated {count} stream entries.")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        evaluator_run(consumer=consumer, stop=stop, block_ms=block_ms)
