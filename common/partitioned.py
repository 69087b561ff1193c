"""Whether a PostgreSQL table is partitioned (the readings and the audit trail are, once their
migrations have run; SQLite keeps plain tables)."""

from __future__ import annotations

from django.db import connection


def table_partitioned(table: str) -> bool:
    """Whether ``table`` is a partitioned table of this PostgreSQL database (never on SQLite)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"
