"""``manage.py audit_purge [--days N]``: remove audit records older than the retention."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.partitions import audit_partitions_ensure, audit_purge


class Command(BaseCommand):
    help = (
        "Remove audit records older than AUDIT_RETENTION_DAYS (default 400, never below 365) "
        "and create the month partitions ahead (PostgreSQL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="Override the retention (at least 365)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = audit_purge(days=options["days"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        created = audit_partitions_ensure()
        self.stdout.write(
            f"Removed {result.deleted} audit records before {result.cutoff.isoformat()} "
            f"({len(result.dropped)} month partitions dropped, {len(created)} created)."
        )
