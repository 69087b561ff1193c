"""``manage.py loadtest``: the benchmark (``make bench ARGS=...``). See docs/performance.md.

Examples::

    manage.py loadtest --spawn-server 1 --devices 500 --rate 4 --dashboards 20 --duration 60
    manage.py loadtest --url http://127.0.0.1:8000 --devices 50 --duration 10 --json
    manage.py loadtest --spawn-server 1 --idle-dashboards 2000 --devices 500 --dashboards 0
    manage.py loadtest --spawn-server 1 --rest-batch 500 --duration 20
    manage.py loadtest --spawn-server 1 --history
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.bench.fixture import Fixture, fixture_create, fixture_delete
from devtools.bench.history import history_run
from devtools.bench.report import machine, render_table
from devtools.bench.rest import rest_run
from devtools.bench.servers import ServerSet, wait_http
from devtools.bench.stream import StreamConfig, stream_run
from testing.processes import database_url


class Command(BaseCommand):
    help = "Drive a running server with devices and dashboards over WebSockets and measure it."

    def add_arguments(self, parser: Any) -> None:
        target = parser.add_argument_group("server")
        target.add_argument(
            "--url",
            action="append",
            default=[],
            help="base URL of a running server (repeat for several processes)",
        )
        target.add_argument(
            "--pid",
            action="append",
            type=int,
            default=[],
            help="PID of a given server process, for its RSS and CPU",
        )
        target.add_argument(
            "--spawn-server",
            type=int,
            default=0,
            metavar="N",
            help="start N Daphne processes on free ports (shared Redis and database); "
            "the default when no --url is given is 1",
        )
        parser.add_argument(
            "--evaluators",
            type=int,
            default=1,
            metavar="N",
            help="with --spawn-server: alarm evaluator processes to start (they share the "
            "stream's partitions)",
        )
        load = parser.add_argument_group("load")
        load.add_argument("--devices", type=int, default=500)
        load.add_argument("--rate", type=float, default=4.0, help="readings/s per device")
        load.add_argument("--wards", type=int, default=10)
        load.add_argument("--dashboards", type=int, default=20)
        load.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
        load.add_argument(
            "--per-frame", type=int, default=1, help="readings per device frame (1 = 'reading')"
        )
        load.add_argument(
            "--abnormal",
            type=float,
            default=0.02,
            help="fraction of devices that cross alarm limits now and then",
        )
        load.add_argument(
            "--episodes",
            type=float,
            default=0.05,
            help="fraction of devices with injected alarm episodes (alarm latency; 0: none)",
        )
        load.add_argument(
            "--alarm-hold",
            type=int,
            default=3,
            metavar="S",
            help="hold time of those patients' high bradycardia band, set as their own limits",
        )
        load.add_argument(
            "--alarm-timeout",
            type=float,
            default=10.0,
            metavar="S",
            help="an alert not on the dashboards this long after its completing reading: missed",
        )
        load.add_argument(
            "--ctg-episodes",
            type=float,
            default=0.02,
            help="fraction of devices with an injected prolonged deceleration (CTG alarm "
            "latency; 0: none)",
        )
        load.add_argument(
            "--ctg-deceleration",
            type=int,
            default=60,
            metavar="S",
            help="those patients' prolonged_deceleration_seconds (60-1800)",
        )
        load.add_argument("--drain", type=float, default=15.0, help="max seconds to await acks")
        load.add_argument("--resend-after", type=float, default=5.0)
        load.add_argument(
            "--warmup", type=float, default=2.0, help="seconds between connecting and sending"
        )
        load.add_argument(
            "--generator-gc",
            choices=("tuned", "untuned"),
            default="tuned",
            help="this process's collector tuned as the server's before sending, or left as "
            "the interpreter's (its pauses are reported either way: generator_gc)",
        )
        modes = parser.add_argument_group("modes")
        modes.add_argument(
            "--idle-dashboards",
            type=int,
            default=0,
            metavar="N",
            help="also hold N idle dashboards on the first server; report memory per connection",
        )
        modes.add_argument(
            "--rest-batch",
            type=int,
            default=0,
            metavar="N",
            help="POST /api/records/ batches of N readings instead of streaming",
        )
        modes.add_argument("--rest-clients", type=int, default=4)
        modes.add_argument(
            "--history",
            action="store_true",
            help="time GET /api/records/<id>/?bucket=60 over 24 h of 4 Hz readings",
        )
        modes.add_argument("--history-hours", type=float, default=24.0)
        modes.add_argument(
            "--history-patients",
            type=int,
            default=1,
            help="patients whose readings are interleaved in the table (the first is queried)",
        )
        modes.add_argument("--history-query", default="bucket=60&from={start}&to={end}")
        target.add_argument(
            "--asgi", default="config.asgi:application", help="application the servers run"
        )
        out = parser.add_argument_group("output")
        out.add_argument("--json", action="store_true", help="print one JSON object")
        out.add_argument("--keep", action="store_true", help="keep the bench data afterwards")
        out.add_argument("--quiet", action="store_true", help="no progress bar")
        out.add_argument("--log-dir", default=str(settings.VAR_DIR / "bench"))

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["url"] and opts["spawn_server"]:
            raise CommandError("Give either --url (a running server) or --spawn-server N.")
        if not opts["url"] and not opts["spawn_server"]:
            opts["spawn_server"] = 1  # `make bench` with no arguments: one Daphne of its own
        mode = "history" if opts["history"] else "rest" if opts["rest_batch"] else "stream"
        if mode == "stream" and opts["idle_dashboards"]:
            mode = "idle"
        servers = ServerSet()
        fixture: Fixture | None = None
        progress = None if opts["quiet"] else self._progress
        started = time.time()
        try:
            urls, pids = self._servers(servers, opts)
            devices = opts["history_patients"] if mode == "history" else opts["devices"]
            if mode == "rest":
                devices = max(devices and min(devices, 50), opts["rest_clients"])
            self._say(f"Creating the bench fixture ({devices} devices) ...")
            fixture = fixture_create(devices=devices, wards=opts["wards"])
            if mode == "history":
                self._say(f"Storing {opts['history_hours']:g} h of 4 Hz readings ...")
                result = history_run(
                    fixture, urls[0], hours=opts["history_hours"], query=opts["history_query"]
                )
            elif mode == "rest":
                result = rest_run(
                    fixture,
                    urls,
                    batch=opts["rest_batch"],
                    clients=opts["rest_clients"],
                    duration=opts["duration"],
                    pids=pids,
                    progress=progress,
                )
            else:
                cfg = StreamConfig(
                    devices=opts["devices"],
                    rate=opts["rate"],
                    wards=opts["wards"],
                    dashboards=opts["dashboards"],
                    duration=opts["duration"],
                    per_frame=opts["per_frame"],
                    abnormal=opts["abnormal"],
                    drain=opts["drain"],
                    resend_after=opts["resend_after"],
                    idle_dashboards=opts["idle_dashboards"],
                    warmup=opts["warmup"],
                    episodes=opts["episodes"],
                    alarm_hold=opts["alarm_hold"],
                    alarm_timeout=opts["alarm_timeout"],
                    clear_seconds=float(settings.ALARM_CLEAR_SECONDS),
                    ctg_episodes=opts["ctg_episodes"],
                    ctg_deceleration=opts["ctg_deceleration"],
                    generator_tuned=opts["generator_gc"] == "tuned",
                )
                if mode == "idle":
                    urls, pids = urls[:1], pids[:1]
                self._say(
                    f"{cfg.devices} devices x {cfg.rate:g} Hz on {cfg.wards} wards, "
                    f"{cfg.dashboards} dashboards, {cfg.idle_dashboards} idle dashboards, "
                    f"{cfg.duration:g} s against {len(urls)} server process(es)"
                )
                result = stream_run(cfg, fixture, urls, pids=pids, progress=progress)
                result["mode"] = mode
        finally:
            if progress:
                sys.stderr.write("\n")
            servers.stop()
            if fixture is not None and not opts["keep"]:
                fixture_delete(fixture)
        result.update(
            servers=len(urls),
            spawned=bool(opts["spawn_server"]),
            database=_vendor(),
            channel_layer=settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
            machine=machine(),
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        )
        if opts["json"]:
            self.stdout.write(json.dumps(result, default=str))
        else:
            self.stdout.write(render_table(result))

    def _servers(self, servers: ServerSet, opts: dict[str, Any]) -> tuple[list, list]:
        if not opts["spawn_server"]:
            for url in opts["url"]:
                wait_http(url, timeout=10)
            return list(opts["url"]), list(opts["pid"])
        env = dict(os.environ)
        env["DATABASE_URL"] = database_url()
        env.setdefault("DEBUG", "false")
        env.setdefault("LOG_LEVEL", "WARNING")
        env["PYTHONUNBUFFERED"] = "1"
        if not os.environ.get("REDIS_URL"):
            from config import embedded_redis

            servers.redis, env["REDIS_URL"] = embedded_redis.start()
        self._say(
            f"Starting {opts['spawn_server']} Daphne process(es) and "
            f"{opts['evaluators']} alarm evaluator(s) ..."
        )
        servers.start(
            opts["spawn_server"],
            env=env,
            log_dir=Path(opts["log_dir"]),
            app=opts["asgi"],
            evaluators=opts["evaluators"],
        )
        return servers.urls, servers.pids

    def _say(self, text: str) -> None:
        self.stderr.write(text)

    def _progress(self, text: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\r" + text[:150].ljust(150))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _vendor() -> str:
    from django.db import connection

    return connection.vendor
