"""Real server processes for live tests: Daphne on a free port with the test's database and
Redis, plus a way to run Django code against that database in a subprocess.

SQLite: the test's own database is in memory, so live tests use a file database in a tmp
directory, migrated once per session. PostgreSQL: the test database of this run (the test
uses ``transactional_db`` so what the servers write is visible and flushed afterwards).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def _database_url() -> str | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return None
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def _sqlite_live_db(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("live-db") / "live.sqlite3"
    url = f"sqlite:///{path}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    return url


@pytest.fixture
def live_env(request, tmp_path) -> dict[str, str]:
    """Environment for server processes: the test's database and Redis."""
    # Live tests are marked django_db(transaction=True): on PostgreSQL the servers share the
    # test database (committed data is visible to them and flushed afterwards).
    url = _database_url()
    if url is None:
        url = request.getfixturevalue("_sqlite_live_db")
    else:
        assert settings.DATABASES["default"]["NAME"].startswith("test_")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "VAR_DIR": str(tmp_path),
    }
    yield env
    if url.startswith("sqlite"):
        django_run(
            env,
            "from monitoring.models import Reading, Device\n"
            "from clinical.models import Patient, Ward, Place, Alert\n"
            "from accounts.models import User\n"
            "for m in (Reading, Alert, Device, Patient, Ward, Place, User):\n"
            "    m.objects.all().delete()\n"
            "result = None",
        )


def django_run(env: dict[str, str], code: str) -> Any:
    """Run Django code in a subprocess against ``env``'s database; returns ``result``."""
    script = (
        "import django, json\ndjango.setup()\n"
        + code
        + "\nprint('@@RESULT@@' + json.dumps(result))"
    )
    completed = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if completed.returncode != 0:
        raise AssertionError(completed.stderr[-3000:])
    line = next(line for line in completed.stdout.splitlines() if line.startswith("@@RESULT@@"))
    return json.loads(line.removeprefix("@@RESULT@@"))


SEED = """
from config.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory
from rest_framework_simplejwt.tokens import AccessToken
place = PlaceFactory()
ward = WardFactory(place=place)
nurse = UserFactory(places=[place])
devices = []
for i in range({n}):
    patient = PatientFactory(ward=ward, monitoring_profile="obstetric" if i % 2 else "adult")
    d = DeviceFactory(patient=patient)
    devices.append({{"id": d.id, "token": d.token, "patient": patient.id,
                    "profile": patient.monitoring_profile}})
result = {{"ward": ward.id, "token": str(AccessToken.for_user(nurse)), "devices": devices}}
"""


def seed(env: dict[str, str], devices: int = 1) -> dict[str, Any]:
    """A place, a ward, a nurse (with an access token) and ``devices`` assigned devices."""
    return django_run(env, SEED.format(n=devices))


def stored_count(env: dict[str, str], device_ids: list[int]) -> int:
    return django_run(
        env,
        "from monitoring.models import Reading\n"
        f"result = Reading.objects.filter(device_id__in={device_ids!r}).count()",
    )


class Daphne:
    """A Daphne server process; ``port=None`` binds a free port chosen by the OS."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.log = log
        endpoint = f"tcp:port={port or 0}:interface=127.0.0.1"
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-e", endpoint, "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.port = self._wait_listening(port)

    def _wait_listening(self, port: int | None, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        pattern = re.compile(rb"Listening on TCP address 127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.log.read_text()[-2000:]}")
            found = pattern.findall(self.log.read_bytes())
            if found:
                return int(found[-1])
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not start: {self.log.read_text()[-2000:]}")

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()


@pytest.fixture
def daphne_factory(live_env, tmp_path) -> Iterator[Any]:
    servers: list[Daphne] = []

    def start(port: int | None = None) -> Daphne:
        server = Daphne(live_env, tmp_path / f"daphne-{len(servers)}.log", port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
