"""``manage.py simulate``: stream realistic readings from simulated devices over WebSocket, or
with ``--hl7 HOST:PORT`` as HL7 v2 PCD-01 messages over MLLP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.hl7_simulator import hl7_demo_devices, simulate_hl7
from devtools.simulator import DeviceSpec, EpisodeConfig, RunOptions, demo_devices, simulate


class Command(BaseCommand):
    help = (
        "Simulate bedside monitors speaking the device WebSocket protocol. --demo uses the "
        "active, assigned devices in the database (their tokens are rotated); --token uses "
        "given device tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/devices/")
        parser.add_argument(
            "--hl7",
            metavar="HOST:PORT",
            default=None,
            help="speak HL7 v2 (PCD-01 ORU^R01 over MLLP) to this listener instead; with --demo",
        )
        parser.add_argument("--demo", action="store_true", help="use the devices in the DB")
        parser.add_argument(
            "--token", action="append", default=[], help="a device token (repeatable)"
        )
        parser.add_argument(
            "--profile", default="adult", choices=["adult", "obstetric"], help="for --token"
        )
        parser.add_argument("--devices", type=int, default=None, help="at most this many")
        parser.add_argument("--rate", type=float, default=1.0, help="readings/s per device")
        parser.add_argument(
            "--duration", type=float, default=None, help="seconds (default: until Ctrl-C)"
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--report", action="store_true", help="print sent/acked counts as JSON at exit"
        )
        parser.add_argument(
            "--episode-every",
            type=float,
            default=600.0,
            help="mean seconds between bradycardia episodes per device (0: none)",
        )
        parser.add_argument("--adult-episode-seconds", type=float, default=45.0)
        parser.add_argument("--fetal-episode-seconds", type=float, default=200.0)
        parser.add_argument(
            "--drain-timeout", type=float, default=15.0, help="wait for final acks at exit"
        )
        parser.add_argument(
            "--ctg-history-minutes",
            type=float,
            default=0.0,
            help=(
                "obstetric monitors start with up to this many minutes of recorded trace "
                "(each between 12 and this; about one in six none), as a ward's beds"
            ),
        )

    def handle(
        self,
        *args: Any,
        url: str,
        demo: bool,
        token: list[str],
        profile: str,
        devices: int | None,
        rate: float,
        duration: float | None,
        seed: int | None,
        report: bool,
        episode_every: float,
        adult_episode_seconds: float,
        fetal_episode_seconds: float,
        drain_timeout: float,
        **options: Any,
    ) -> None:
        # -v 2: also each connect failure and reconnect.
        logging.basicConfig(level=logging.INFO if options["verbosity"] > 1 else logging.WARNING)
        if rate <= 0:
            raise CommandError("--rate must be positive.")
        run = RunOptions(
            rate=float(rate),
            duration=duration,
            seed=seed,
            episodes=EpisodeConfig(
                every=float(episode_every),
                adult_seconds=float(adult_episode_seconds),
                fetal_seconds=float(fetal_episode_seconds),
                enabled=float(episode_every) > 0,
            ),
            drain_timeout=float(drain_timeout),
        )
        if options["hl7"]:
            self._hl7(options["hl7"], demo=demo, devices=devices, run=run, report=report)
            return
        specs = [
            DeviceSpec(token=t, profile=str(profile), label=f"device-{i + 1}")
            for i, t in enumerate(token)
        ]
        if demo:
            specs += demo_devices(limit=devices)
        elif devices:
            specs = specs[:devices]
        if not specs:
            raise CommandError("No devices: pass --demo (devices in the database) or --token.")
        self.stderr.write(f"Simulating {len(specs)} device(s) at {rate} Hz -> {url}")
        counts = self._run(
            simulate(
                specs,
                url=str(url),
                run=run,
                ctg_history_minutes=float(options["ctg_history_minutes"]),
            ),
            report=report,
        )
        if counts is not None and counts["fatal"] and len(counts["fatal"]) == len(specs):
            raise CommandError(f"every device was refused: {counts['fatal'][:3]}")

    def _hl7(
        self,
        address: str,
        *,
        demo: bool,
        devices: int | None,
        run: RunOptions,
        report: bool,
    ) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError("--hl7 takes HOST:PORT, e.g. 127.0.0.1:2575.")
        if not demo:
            raise CommandError("--hl7 simulates the devices in the database: add --demo.")
        specs = hl7_demo_devices(limit=devices)
        if not specs:
            raise CommandError("No active, assigned devices in the database.")
        self.stderr.write(f"Simulating {len(specs)} HL7 device(s) at {run.rate} Hz -> {address}")
        self._run(simulate_hl7(specs, host=host, port=int(port), run=run), report=report)

    def _run(
        self, simulation: Coroutine[Any, Any, dict[str, Any]], *, report: bool
    ) -> dict[str, Any] | None:
        """Run ``simulation`` to its end and return its counts (printed as JSON with
        ``--report``); None when stopped with Ctrl-C."""
        try:
            counts = asyncio.run(simulation)
        except KeyboardInterrupt:
            return None
        if report:
            self.stdout.write(json.dumps(counts))
        return counts
