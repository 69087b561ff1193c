"""``manage.py simulate``: stream realistic readings from simulated devices over WebSocket."""

from __future__ import annotations

import asyncio
import json
import logging

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.simulator import DeviceSpec, EpisodeConfig, demo_devices, simulate


class Command(BaseCommand):
    help = (
        "Simulate bedside monitors speaking the device WebSocket protocol. --demo uses the "
        "active, assigned devices in the database (their tokens are rotated); --token uses "
        "given device tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/devices/")
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

    def handle(self, *args: object, **options: object) -> None:
        logging.basicConfig(level=logging.WARNING)
        specs = [
            DeviceSpec(token=t, profile=str(options["profile"]), label=f"device-{i + 1}")
            for i, t in enumerate(options["token"])  # type: ignore[arg-type]
        ]
        if options["demo"]:
            specs += demo_devices(limit=options["devices"])  # type: ignore[arg-type]
        elif options["devices"]:
            specs = specs[: options["devices"]]  # type: ignore[misc]
        if not specs:
            raise CommandError("No devices: pass --demo (devices in the database) or --token.")
        if options["rate"] <= 0:  # type: ignore[operator]
            raise CommandError("--rate must be positive.")
        episodes = EpisodeConfig(
            every=float(options["episode_every"]),  # type: ignore[arg-type]
            adult_seconds=float(options["adult_episode_seconds"]),  # type: ignore[arg-type]
            fetal_seconds=float(options["fetal_episode_seconds"]),  # type: ignore[arg-type]
            enabled=float(options["episode_every"]) > 0,  # type: ignore[arg-type]
        )
        self.stderr.write(
            f"Simulating {len(specs)} device(s) at {options['rate']} Hz -> {options['url']}"
        )
        try:
            report = asyncio.run(
                simulate(
                    specs,
                    url=str(options["url"]),
                    rate=float(options["rate"]),  # type: ignore[arg-type]
                    duration=options["duration"],  # type: ignore[arg-type]
                    seed=options["seed"],  # type: ignore[arg-type]
                    episodes=episodes,
                    drain_timeout=float(options["drain_timeout"]),  # type: ignore[arg-type]
                )
            )
        except KeyboardInterrupt:
            return
        if options["report"]:
            self.stdout.write(json.dumps(report))
        if report["fatal"] and len(report["fatal"]) == len(specs):
            raise CommandError(f"every device was refused: {report['fatal'][:3]}")
