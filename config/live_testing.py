"""Real server processes for live tests (Daphne, Celery) and the database they share with the
test, registered as a pytest plugin by the root conftest.

The child processes need a database they can see:
- PostgreSQL: this run's test database. Live tests are ``django_db(transaction=True)``, so what
  the test and the servers write is committed, visible to both and flushed afterwards.
- SQLite: the test's own database is in memory, so the servers use a file database migrated
  once per session and emptied after each test.
- A test that needs a database of its own (the browser tests seed a whole ward and keep their
  server across tests) takes an ``isolated_database``: a separate PostgreSQL database created
  and dropped here, or a SQLite file.

Data is seeded and read through short Django subprocesses (``django_run``), the same way on
both backends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest

from config.net import free_port as free_port  # re-exported for the live tests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DAPHNE_LISTENING = rb"Listening on TCP address 127\.0\.0\.1:(\d+)"


def postgres_test_url() -> str | None:
    """The URL of this run's PostgreSQL test database, or None on another backend."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return None
    assert db["NAME"].startswith("test_"), db["NAME"]
    auth = ""
    if db.get("USER"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "") + "@"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def child_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: this run's Redis and ``database_url``."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "VAR_DIR": str(var_dir),
        **extra,
    }
    # Names the test database of this run; a server process uses DATABASE_URL as it is.
    env.pop("TEST_DATABASE_NAME", None)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 240) -> str:
    """Run a management command against ``env``'s database; its output, or an error with it."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def django_run(env: dict[str, str], code: str) -> Any:
    """Run Django code in a subprocess against ``env``'s database; returns its ``result``."""
    script = (
        "import django, json\ndjango.setup()\n"
        + code
        + "\nprint('@@RESULT@@' + json.dumps(result))"
    )
    done = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(done.stderr[-3000:])
    line = next(line for line in done.stdout.splitlines() if line.startswith("@@RESULT@@"))
    return json.loads(line.removeprefix("@@RESULT@@"))


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


class ServerProcess:
    """A server process logging to a file, in its own session so that stopping it reaches
    whatever it forked. Readiness is read from its log or probed; a failure shows the log."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self._start = self._file.tell()  # a restart may append to an earlier run's log
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> bytes:
        return self.log.read_bytes()[self._start :]

    def logs(self, tail: int = 3000) -> str:
        return self.output().decode(errors="replace")[-tail:]

    def wait_for(self, pattern: bytes, timeout: float = 60.0) -> re.Match[bytes]:
        """Wait until the log matches ``pattern`` (the last match is returned)."""
        found: list[re.Match[bytes]] = []

        def matched() -> bool:
            found[:] = list(re.finditer(pattern, self.output()))
            return bool(found)

        self.wait_until(matched, timeout, f"{pattern!r} in the log")
        return found[-1]

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.log.name}: exited early:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.log.name}: not {what} after {timeout} s:\n{self.logs()}")

    def kill(self) -> None:
        """Die at once, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL to the whole process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its children, if any outlived it
        self.process.wait(10)
        self._file.close()
        # Captured by pytest, and shown only when the test fails.
        print(f"--- {self.log.name} (pid {self.process.pid}) ---\n{self.logs()}")


class Daphne(ServerProcess):
    """Daphne serving ``config.asgi``; ``port=None`` binds a free port chosen by the OS.
    Started at once; ``wait_ready()`` before use (servers can start side by side)."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        endpoint = f"tcp:port={port or 0}:interface=127.0.0.1"
        super().__init__(
            [PYTHON, "-m", "daphne", "-e", endpoint, "config.asgi:application"], env, log
        )
        self.port = port or 0

    def wait_ready(self, timeout: float = 60) -> Daphne:
        self.port = int(self.wait_for(DAPHNE_LISTENING, timeout).group(1))
        return self

    def url(self, path: str, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class CeleryWorker(ServerProcess):
    """A Celery worker of ``config``, concurrency 1, with more worker ``options`` (and beat when
    ``beat``); ``wait_ready()`` before use, unless tasks may wait in the queue."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *options: str,
        name: str | None = None,
        beat: bool = False,
    ) -> None:
        command = [PYTHON, "-m", "celery", "-A", "config", "worker", *options]
        if beat:
            command += ["-B", "-s", str(log.parent / f"{log.stem}-beat-schedule")]
        if name:
            command += ["-n", f"{name}-{os.getpid()}@%h"]
        command += ["--concurrency", "1", "-l", "info"]
        super().__init__(command, env, log)

    def wait_ready(self, timeout: float = 60) -> CeleryWorker:
        self.wait_for(rb"ready\.", timeout)
        return self


async def until(predicate: Callable[[], Any], wait: float, what: str) -> None:
    """Wait (without blocking the event loop) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + wait
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


# --- pytest fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_sqlite_database(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A SQLite file database migrated once per session, for servers on the SQLite backend."""
    url = f"sqlite:///{tmp_path_factory.mktemp('live-db') / 'live.sqlite3'}"
    manage({**os.environ, "DATABASE_URL": url}, "migrate", "--noinput", "-v", "0")
    return url


@pytest.fixture
def live_database_url(request) -> Iterator[str]:  # type: ignore[no-untyped-def]
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
def live_env(live_database_url, tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment for server processes: the shared database and this run's Redis."""
    return child_env(live_database_url, tmp_path)


@pytest.fixture
def daphne_factory(live_env, tmp_path) -> Iterator[Callable[..., Daphne]]:  # type: ignore[no-untyped-def]
    """Starts Daphne servers on ``live_env`` (``start(port=None)``); all stopped afterwards."""
    servers: list[Daphne] = []

    def start(port: int | None = None) -> Daphne:
        server = Daphne(live_env, tmp_path / f"daphne-{len(servers)}.log", port=port)
        servers.append(server)
        return server.wait_ready()

    yield start
    for server in servers:
        server.stop()
