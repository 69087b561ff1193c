"""``manage.py alarms_lag``: how far the alarm evaluators are behind, per stream partition."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitoring.stream.lag import stream_lag

COLUMNS = ("partition", "length", "pending", "lag", "last delivered", "owner")


class Command(BaseCommand):
    help = (
        "Show the readings stream per partition: entries, pending (delivered, not acknowledged), "
        "lag (not yet delivered), the last delivered id and the evaluator holding it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON array, one object a row.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = stream_lag()
        if options["json"]:
            self.stdout.write(json.dumps([row.as_dict() for row in rows], indent=2))
            return
        table = [COLUMNS] + [
            (
                str(row.partition),
                str(row.length),
                str(row.pending),
                str(row.lag) if row.lag_exact else f">={row.lag}",
                row.last_delivered_id or "-",
                row.owner or "-",
            )
            for row in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        for line in table:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
            )
        total = sum(row.lag + row.pending for row in rows)
        self.stdout.write(f"{total} readings not yet evaluated.")
