"""``manage.py audit_bench``: what the access audit costs a REST read (docs/performance.md,
"The access audit").

Creates the test database of the configured one (``TEST_DATABASE_NAME``; on SQLite an
in-memory database), migrates it, adds a place, a nurse and a patient, then sends
``--requests`` pairs of ``GET /api/patients/<id>/`` through the whole middleware stack and the
real JWT authentication (Django's test client, in process, no network), alternating a stack
with the audit middleware and one without it, so that both see the same machine. Each audited
request inserts its record in autocommit mode, as in production. Prints p50, p95 and p99 of
both and the difference; the test database is dropped at the end.

Examples::

    manage.py audit_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x TEST_DATABASE_NAME=bench_audit \\
        manage.py audit_bench --requests 3000
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test import Client, override_settings
from rest_framework_simplejwt.tokens import RefreshToken

AUDIT = "audit.middleware.AuditMiddleware"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Command(BaseCommand):
    help = "The REST latency the access audit adds (p50/p95/p99 with and without it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", type=int, default=2000, help="Pairs of requests.")
        parser.add_argument("--warmup", type=int, default=200)
        parser.add_argument(
            "--async-commit",
            action="store_true",
            help="PostgreSQL: commit without waiting for the WAL flush (synchronous_commit "
            "off), to show how much of the cost is the flush. Not how production runs.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("access").setLevel(logging.WARNING)  # one line per request otherwise
        old_name = connection.settings_dict["NAME"]
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            if options["async_commit"] and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit = off")
            self._run(options["requests"], options["warmup"], test_name)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    def _sync_commit(self) -> str:
        if connection.vendor != "postgresql":
            return "n/a"
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    def _client(self, token: str, *, audited: bool) -> Client:
        middleware = [m for m in settings.MIDDLEWARE if audited or m != AUDIT]
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        with override_settings(MIDDLEWARE=middleware):
            client.get("/healthz")  # the handler loads its middleware chain now
        return client

    def _run(self, requests: int, warmup: int, database: str) -> None:
        from accounts.models import Role, User
        from audit.models import AuditRecord
        from clinical.models import Patient, Place, Ward

        place = Place.objects.create(name="Bench hospital", kind="hospital")
        ward = Ward.objects.create(place=place, name="Bench ward")
        patient = Patient.objects.create(name="Bench", mrn="BENCH-1", place=place, ward=ward)
        nurse = User.objects.create_user("bench-nurse@example.org", "Bench-Passw0rd!")
        nurse.role = Role.NURSE
        nurse.save(update_fields=["role"])
        nurse.places.add(place)
        token = str(RefreshToken.for_user(nurse).access_token)
        url = f"/api/patients/{patient.id}/"
        clients = {
            True: self._client(token, audited=True),
            False: self._client(token, audited=False),
        }
        times: dict[bool, list[float]] = {True: [], False: []}
        for n in range(warmup + requests):
            for audited in (n % 2 == 0, n % 2 != 0):  # alternate which goes first
                started = time.perf_counter()
                response = clients[audited].get(url)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.content[:200]
                if n >= warmup:
                    times[audited].append(elapsed)
        records = AuditRecord.objects.filter(resource_type="patient").count()
        self.stdout.write(
            f"database {connection.vendor} ({database}), {requests} requests each, "
            f"synchronous_commit {self._sync_commit()}, "
            f"{records} audit records written"
        )
        for audited in (False, True):
            values = times[audited]
            self.stdout.write(
                f"{'with audit   ' if audited else 'without audit'}  "
                f"p50 {_percentile(values, 0.5):.2f} ms  p95 {_percentile(values, 0.95):.2f} ms  "
                f"p99 {_percentile(values, 0.99):.2f} ms  mean {statistics.fmean(values):.2f} ms"
            )
        self.stdout.write(
            "overhead      "
            f"p50 {_percentile(times[True], 0.5) - _percentile(times[False], 0.5):+.2f} ms  "
            f"p95 {_percentile(times[True], 0.95) - _percentile(times[False], 0.95):+.2f} ms"
        )
