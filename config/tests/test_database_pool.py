"""PostgreSQL connections come from a pool per process (config/settings.py, DB_POOL_MAX_SIZE):
a finished request's connection goes back to it instead of waiting for the garbage collector,
which runs its full collections rarely (SERVER_GC_THRESHOLDS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from time import monotonic

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool, PoolTimeout

from testing.postgres import local_postgres, postgres_bin

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
    assert probe["pool"] == {
        "min_size": 1,
        "max_size": 20,
        "timeout": 2.0,
        "reconnect_timeout": 2.0,
    }, probe
    assert probe["gc"] == [700, 10, 1000], probe


def test_the_pool_can_be_sized_or_turned_off_for_persistent_connections():
    url = "postgres://monitor@db.example:5432/monitor"
    sized = _settings(
        DATABASE_URL=url, DB_POOL_MAX_SIZE="5", DB_POOL_TIMEOUT="3", DB_POOL_RECONNECT_TIMEOUT="4"
    )
    assert sized["pool"] == {
        "min_size": 1,
        "max_size": 5,
        "timeout": 3.0,
        "reconnect_timeout": 4.0,
    }, sized
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


OUTAGE_SECONDS = 16  # psycopg_pool's own back-off would next try 15 s later (at 31 s)


@pytest.mark.live
@pytest.mark.skipif(postgres_bin() is None, reason="needs the PostgreSQL binaries (initdb)")
@pytest.mark.timeout(180)
def test_after_an_outage_the_pool_connects_as_soon_as_postgresql_is_back():
    """Devices ask for connections all through an outage; once PostgreSQL is back the next one
    is served within seconds, not after the pool's exponential back-off (1, 2, 4, 8, 16 s ...)
    has run out its next delay: a pool that gives up on a connection after
    ``reconnect_timeout`` grows again on the next request."""
    with local_postgres() as postgres:
        options = _settings(DATABASE_URL=postgres.url())["pool"]
        with ConnectionPool(postgres.url(), open=True, **options) as pool:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            postgres.stop("immediate")
            refused = 0
            ends = monotonic() + OUTAGE_SECONDS
            while monotonic() < ends:
                with (
                    pytest.raises((PoolTimeout, psycopg.OperationalError)),
                    pool.connection(timeout=1) as conn,
                ):
                    conn.execute("SELECT 1")
                refused += 1
            postgres.start()
            back = monotonic()
            with pool.connection(timeout=60) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            waited = monotonic() - back
    assert refused >= OUTAGE_SECONDS // 2
    assert waited < 5, f"the first connection after the outage took {waited:.1f} s"
