"""``manage.py alarms_evaluate``: the alarm evaluator process, reading the readings stream.

Runs until SIGTERM or SIGINT, then gives its partitions back so another evaluator takes them at
once. Run one or more (up to ``READINGS_STREAM_PARTITIONS``), on any machine that reaches Redis
and the database; they share the partitions between them (monitoring/stream.py).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from clinical.alarms import alarms_evaluate
from monitoring.ingest import StoredReading
from monitoring.stream import StreamReader, consumer_name_default, drain

logger = logging.getLogger(__name__)


def evaluate(batch: list[StoredReading]) -> None:
    """The handler: one partition batch. Alert writes are committed when it returns."""
    if not connection.in_atomic_block:  # (a test's transaction must be left alone)
        close_old_connections()  # a long-lived process: drop broken or expired connections
    alarms_evaluate(stored=batch)


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
            "--once",
            action="store_true",
            help="Evaluate what is in the stream now, then exit.",
        )

    def handle(self, *args: Any, block_ms: int, consumer: str, once: bool, **options: Any) -> None:
        if once:
            count = drain(evaluate, consumer=consumer)
            self.stdout.write(f"Evaluated {count} stream entries.")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        logger.info("alarm evaluator %s starting", consumer)
        StreamReader(evaluate, consumer=consumer).run(stop=stop, block_ms=block_ms)
        logger.info("alarm evaluator %s stopped", consumer)
