"""PostgreSQL connections come from a pool per process (config/settings.py, DB_POOL_MAX_SIZE):
a finished request's connection goes back to it instead of waiting for the garbage collector,
which runs its full collections rarely (SERVER_GC_THRESHOLDS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({"age": db["CONN_MAX_AGE"], "pool": db.get("OPTIONS", {}).get("pool"),
                  "gc": settings.SERVER_GC_THRESHOLDS}))
"""


def _settings(**env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_postgresql_connections_come_from_a_pool_and_full_collections_are_rare():
    probe = _settings(DATABASE_URL="postgres://monitor@db.example:5432/monitor")
    assert probe["age"] == 0, probe
    assert probe["pool"] == {"min_size": 1, "max_size": 20, "timeout": 10.0}, probe
    assert probe["gc"] == [700, 10, 1000], probe


def test_the_pool_can_be_sized_or_turned_off_for_persistent_connections():
    url = "postgres://monitor@db.example:5432/monitor"
    sized = _settings(DATABASE_URL=url, DB_POOL_MAX_SIZE="5", DB_POOL_TIMEOUT="3")
    assert sized["pool"] == {"min_size": 1, "max_size": 5, "timeout": 3.0}, sized
    persistent = _settings(DATABASE_URL=url, DB_POOL_MAX_SIZE="0", CONN_MAX_AGE="60")
    assert (persistent["pool"], persistent["age"]) == (None, 60), persistent
    sqlite = _settings()
    assert (sqlite["pool"], sqlite["age"]) == (None, 0), sqlite


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the pool is PostgreSQL's (DATABASE_URL=postgres://...)",
)
@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_goes_back_to_the_pool_and_the_next_query_takes_one():
    assert settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] >= 1
    pool = connection.pool  # type: ignore[attr-defined]  # the PostgreSQL backend's
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    idle = pool.get_stats()["pool_available"]
    assert idle >= 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert pool.get_stats()["pool_available"] == idle - 1
    connection.close()
    assert pool.get_stats()["pool_available"] == idle
