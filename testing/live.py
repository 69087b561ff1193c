"""Live tests: the database they share with their server processes (testing.processes), and
the fixtures that start those servers; a pytest plugin registered by the root conftest.

The child processes need a database they can see:
- PostgreSQL: this run's test database. Live tests are ``django_db(transaction=True)``, so what
  the test and the servers write is committed, visible to both and flushed afterwards.
- SQLite: the test's own database is in memory, so the servers use a file database migrated
  once per session and emptied after each test.
- A test that needs a database of its own (the browser tests seed a whole ward and keep their
  server across tests) takes an ``isolated_database``: a separate PostgreSQL database created
  and dropped here, or a SQLite file.

Data is seeded and read through short Django subprocesses (``testing.processes.django_run``),
the same way on both backends.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from testing.processes import Daphne, child_env, database_url, manage


def postgres_test_url() -> str | None:
    """The URL of this run's PostgreSQL test database, or None on another backend."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
    return database_url()


@contextmanager
def isolated_database(workdir: Path) -> Iterator[str]:
    """A database of its own, empty (migrate it): on PostgreSQL a new database beside the one
    DATABASE_URL names, dropped afterwards; otherwise a SQLite file in ``workdir``."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{workdir / 'live.sqlite3'}"
        return
    import psycopg

    parsed = urlparse(url)
    name = f"{(parsed.path.lstrip('/') or 'postgres')[:30]}_live_{uuid.uuid4().hex[:8]}"
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parsed._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def until(predicate: Callable[[], Any], wait: float, what: str) -> None:
    """Wait (without blocking the event loop) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + wait
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def live_dashboard(url: str, token: str, ward: int) -> ClientConnection:
    """A dashboard on a real server: authenticated with ``token`` and subscribed to ``ward``
    (the snapshot consumed). No client pings, so a silent server stays silent."""
    ws = await websockets.connect(url, ping_interval=None)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await ws.recv())["type"] == "auth.ok"
    await ws.send(json.dumps({"type": "subscribe", "ward": ward}))
    assert json.loads(await ws.recv())["type"] == "snapshot"
    return ws


async def live_device(url: str, token: str) -> ClientConnection:
    """A device's WebSocket on a real server, authenticated by its token."""
    return await websockets.connect(url, additional_headers={"Authorization": f"Device {token}"})


# --- pytest fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file database migrated once per session, for servers on the SQLite backend."""
    url = f"sqlite:///{tmp_path_factory.mktemp('live-db') / 'live.sqlite3'}"
    manage({**os.environ, "DATABASE_URL": url}, "migrate", "--noinput", "-v", "0")
    return url


@pytest.fixture
def live_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database the test shares with its server processes (see the module docstring);
    the test must be ``django_db(transaction=True)``."""
    url = postgres_test_url()
    if url is not None:
        yield url
        return
    url = request.getfixturevalue("live_sqlite_database")
    yield url
    # The file database outlives the test: empty it.
    manage({**os.environ, "DATABASE_URL": url}, "flush", "--noinput", timeout=60)


@pytest.fixture
def live_env(live_database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for server processes: the shared database and this run's Redis."""
    return child_env(live_database_url, tmp_path)


@pytest.fixture
def daphne_factory(live_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Daphne]]:
    """Starts Daphne servers on ``live_env`` (``start(port=None)``); all stopped afterwards."""
    servers: list[Daphne] = []

    def start(port: int | None = None) -> Daphne:
        server = Daphne(live_env, tmp_path / f"daphne-{len(servers)}.log", port=port)
        servers.append(server)
        return server.wait_ready()

    yield start
    for server in servers:
        server.stop()
