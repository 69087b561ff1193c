"""A real server for browser tests: Daphne in a subprocess with DEBUG off and collected static
files, the test run's Redis, and a database the subprocess can see (a migrated SQLite file,
or on PostgreSQL a separate non-transactional database created and dropped here).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveStack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "daphne.log"
        self._pg_admin_url: str | None = None
        self._pg_name: str | None = None
        self.database_url = self._make_database()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": os.environ["REDIS_URL"],
            "DEBUG": "false",
            "VAR_DIR": str(workdir),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECRET_KEY": "live-browser-test-key-" + uuid.uuid4().hex,
            "CACHE_KEY_PREFIX": "live-" + uuid.uuid4().hex[:8],
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "THROTTLE_LOGIN": "1000/min",
        }
        self.env.pop("TEST_DATABASE_NAME", None)

    # --- database ------------------------------------------------------------------------
    def _make_database(self) -> str:
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            return f"sqlite:///{self.workdir / 'live.sqlite3'}"
        import psycopg

        parsed = urlparse(url)
        base = (parsed.path.lstrip("/") or "postgres")[:30]
        self._pg_name = f"{base}_browser_{uuid.uuid4().hex[:8]}"
        self._pg_admin_url = urlunparse(parsed._replace(path="/postgres"))
        with psycopg.connect(self._pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self._pg_name}"')
        return urlunparse(parsed._replace(path=f"/{self._pg_name}"))

    def _drop_database(self) -> None:
        if not self._pg_name:
            return
        import psycopg

        with psycopg.connect(self._pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')

    # --- processes -----------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def prepare(self, **seed_env: str) -> dict[str, Any]:
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        result = subprocess.run(
            [sys.executable, "-m", "frontend.tests.live_seed"],
            cwd=ROOT,
            env={**self.env, **seed_env},
            capture_output=True,
            text=True,
            timeout=240,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log = log
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daphne exited:\n" + self.log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError("daphne did not start:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._drop_database()

    # --- HTTP ------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, text

    def post_readings(self, token: str, items: list[dict[str, Any]]) -> tuple[int, Any]:
        return self.request("POST", "/api/records/", items, {"Authorization": f"Device {token}"})


class DeviceStream:
    """Bedside monitors on the device WebSocket, as the real ones connect: one connection per
    device, readings sent as frames and acknowledged by the server after storage."""

    def __init__(self, stack: LiveStack, patients: list[dict[str, Any]]) -> None:
        from contextlib import ExitStack

        from websockets.sync.client import connect

        self.patients = patients
        self._exit = ExitStack()
        self.connections = [
            self._exit.enter_context(
                connect(
                    f"ws://127.0.0.1:{stack.port}/ws/devices/",
                    additional_headers={"Authorization": f"Device {p['token']}"},
                    proxy=None,
                    open_timeout=10,
                )
            )
            for p in patients
        ]

    def send(self, items_of: Any) -> None:
        """Send each device its readings (``items_of(patient) -> list``) and wait for the acks."""
        pending = []
        for patient, ws in zip(self.patients, self.connections, strict=True):
            items = items_of(patient)
            ws.send(json.dumps({"type": "readings", "items": items}))
            pending.append((ws, {item["seq"] for item in items}))
        for ws, seqs in pending:
            deadline = time.monotonic() + 15
            while seqs and time.monotonic() < deadline:
                frame = json.loads(ws.recv(timeout=15))
                if frame.get("type") == "ack":
                    seqs -= set(frame["seqs"])
                elif frame.get("type") == "error":
                    raise AssertionError(frame)
            assert not seqs, f"not acknowledged: {sorted(seqs)}"

    def close(self) -> None:
        self._exit.close()
