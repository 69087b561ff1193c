"""``manage.py hl7_loadtest``: HL7 ingest throughput and ACK latency (docs/performance.md).

Creates a bench place with one device and patient per connection, starts an MLLP listener of
its own (``manage.py hl7_listen``) unless ``--port`` names a running one, opens
``--connections`` MLLP connections, each sending ``--messages`` PCD-01 ORU^R01 messages
(``--window`` in flight at a time; 1 waits for each ACK), and reports messages/s, the ACK
latency percentiles and whether every reading was stored. Examples::

    manage.py hl7_loadtest --connections 100 --messages 50
    manage.py hl7_loadtest --port 2575 --connections 20 --window 4 --json
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.bench.fixture import fixture_create, fixture_delete
from devtools.bench.hl7 import Hl7Load, hl7_drive
from devtools.bench.report import machine
from devtools.bench.servers import fd_limit_raise
from testing.processes import Hl7Listener, database_url


class Command(BaseCommand):
    help = "Measure HL7 ingest: MLLP connections sending ORU^R01 messages, ACK latency."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=0, help="a running listener (default: start one)"
        )
        parser.add_argument("--connections", type=int, default=100)
        parser.add_argument("--messages", type=int, default=50, help="per connection")
        parser.add_argument("--window", type=int, default=1, help="in flight per connection")
        parser.add_argument("--observations", type=int, default=1, help="heart rates a message")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--keep", action="store_true", help="keep the bench fixture")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["connections"] < 1 or opts["messages"] < 1 or opts["window"] < 1:
            raise CommandError("--connections, --messages and --window must be positive")
        fd_limit_raise()
        load = Hl7Load(
            connections=opts["connections"],
            messages=opts["messages"],
            window=opts["window"],
            observations=opts["observations"],
            label=f"bench-{uuid.uuid4().hex[:8]}",
        )
        listener: Hl7Listener | None = None
        self.stderr.write(f"Creating the bench fixture ({load.connections} devices) ...")
        fixture = fixture_create(devices=load.connections, wards=1)
        try:
            devices = _devices(fixture.device_ids)
            port = opts["port"]
            if not port:
                env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
                env["LOG_LEVEL"] = "INFO"  # its address is read from its log
                env.setdefault("DEBUG", "false")
                log = Path(tempfile.mkdtemp(prefix="hl7-bench-")) / "hl7_listen.log"
                listener = Hl7Listener(env, log, echo_log=False).wait_ready()
                port = listener.port
                self.stderr.write(f"Listener started on port {port} (log {log})")
            self.stderr.write(
                f"{load.connections} connections x {load.messages} messages "
                f"(window {load.window}, {load.observations} reading(s) each) ..."
            )
            started = time.time()
            result = asyncio.run(hl7_drive(load, host=opts["host"], port=port, devices=devices))
            result["stored"] = _stored(fixture.device_ids)
            result["expected"] = load.connections * load.messages * load.observations
        finally:
            if listener is not None:
                listener.stop(timeout=10)
            if not opts["keep"]:
                fixture_delete(fixture)
        result.update(
            spawned=listener is not None,
            database=_vendor(),
            machine=machine(),
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        )
        if opts["json"]:
            self.stdout.write(json.dumps(result, default=str))
            return
        latency = result["ack_latency_ms"]
        self.stdout.write(
            f"{result['messages']} messages on {result['connections']} connections in "
            f"{result['seconds']} s: {result['messages_per_second']} messages/s "
            f"({result['readings_per_second']} readings/s)\n"
            f"ACK latency ms: p50 {latency['p50']}  p95 {latency['p95']}  p99 {latency['p99']}"
            f"  max {latency['max']}\n"
            f"ACKs {result['acks']}; stored {result['stored']} of {result['expected']} readings"
        )


def _devices(device_ids: list[int]) -> list[tuple[str, str]]:
    from clinical.models import Device

    rows = Device.objects.filter(id__in=device_ids).values_list("id", "serial", "patient__mrn")
    by_id = {row[0]: (row[1], row[2] or "") for row in rows}
    return [by_id[i] for i in device_ids]


def _stored(device_ids: list[int]) -> int:
    from monitoring.models import Reading

    return Reading.objects.filter(device_id__in=device_ids).count()


def _vendor() -> str:
    from django.db import connection

    return connection.vendor
