"""``manage.py readings_partitions``: list, create and expire the readings table's partitions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.partitions import (
    postgres_partitioned,
    readings_partitions,
    readings_partitions_ensure,
    readings_retention_apply,
)


class Command(BaseCommand):
    help = (
        "Create the day partitions of the readings table up to --ahead days from today "
        "(PostgreSQL), optionally apply retention, and list the partitions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ahead", type=int, default=None, help="Days ahead (READINGS_PARTITIONS_AHEAD_DAYS)."
        )
        parser.add_argument(
            "--retention",
            action="store_true",
            help="Also drop the day partitions past retention, archiving readings around alerts.",
        )
        parser.add_argument(
            "--days", type=int, default=None, help="Retention in days (READINGS_RETENTION_DAYS)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not postgres_partitioned():
            raise CommandError(
                "The readings table is not partitioned: partitions exist on PostgreSQL only "
                "(SQLite keeps one plain table)."
            )
        for name in readings_partitions_ensure(ahead_days=options["ahead"]):
            self.stdout.write(f"created {name}")
        if options["retention"]:
            result = readings_retention_apply(days=options["days"])
            if result.skipped:
                self.stdout.write(f"retention skipped: {result.skipped}")
            else:
                assert result.cutoff is not None
                for name in result.dropped:
                    self.stdout.write(f"dropped {name}")
                self.stdout.write(
                    f"retention: readings before {result.cutoff.isoformat()} expired; "
                    f"{result.archived} archived around alerts, {result.keys_deleted} keys "
                    f"deleted, {result.default_rows_deleted} rows deleted from the default "
                    "partition"
                )
        for partition in readings_partitions():
            span = (
                "default"
                if partition.start is None or partition.end is None
                else f"{partition.start.isoformat()} .. {partition.end.isoformat()}"
            )
            rows = "?" if partition.rows < 0 else f"~{partition.rows}"
            self.stdout.write(f"{partition.name}  {span}  {rows} rows")
