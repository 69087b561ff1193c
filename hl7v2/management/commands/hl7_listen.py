"""``manage.py hl7_listen [--host H] [--port P]``: the HL7 v2 MLLP listener (PCD-01 ORU^R01 in).

Runs until SIGTERM or SIGINT; messages in flight are answered before it exits. Run it beside
the web process: it stores readings through the same ingest pipeline (docs/hl7.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from common.runtime import latency_tune
from hl7v2.listener import listen_forever


class Command(BaseCommand):
    help = "Listen for HL7 v2 ORU^R01 messages over MLLP until stopped (SIGTERM/SIGINT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.HL7_MLLP_HOST)
        parser.add_argument("--port", type=int, default=settings.HL7_MLLP_PORT)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        latency_tune()  # its event loop stores and answers every message
        asyncio.run(_serve(host, port))


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(listen_forever(host, port))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
