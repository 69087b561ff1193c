"""A real server for browser tests: Daphne in a subprocess with DEBUG off and collected static
files, the test run's Redis, and a database of its own (testing.live's
``isolated_database``: a separate PostgreSQL database, or a SQLite file), migrated here.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from testing.live import isolated_database
from testing.processes import PYTHON, ROOT, Daphne, Evaluator, child_env, free_port
from testing.processes import manage as manage_command


class LiveStack:
    seed: dict[str, Any]  # what ``prepare`` seeded, kept by the test module's fixture

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        # Fixed for the module: the pages keep this address across a server restart.
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Daphne | None = None
        self.evaluator: Evaluator | None = None
        self.log_path = workdir / "daphne.log"
        self._resources = ExitStack()
        self.database_url = self._resources.enter_context(isolated_database(workdir))
        self.env = child_env(
            self.database_url,
            workdir,
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECRET_KEY="live-browser-test-key-" + uuid.uuid4().hex,
            CACHE_KEY_PREFIX="live-" + uuid.uuid4().hex[:8],
            THROTTLE_LOGIN="1000/min",
            # The tiles follow every evaluation's CTG wording here, whatever the tests before
            # left in the patient's row; the rewrite interval is tested on its own
            # (alerts/tests/test_ctg_classification.py).
            CTG_REASONS_REFRESH_SECONDS="0",
        )

    # --- processes -----------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        return manage_command(self.env, *args)

    def prepare(self, **seed_env: str) -> dict[str, Any]:
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        result = subprocess.run(
            [PYTHON, "-m", "frontend.tests.live_seed"],
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
        if self.evaluator is None:  # the alarm evaluator outlives server restarts
            self.evaluator = Evaluator(self.env, self.workdir / "evaluator.log").wait_ready()
        self.server = Daphne(self.env, self.log_path, port=self.port).wait_ready()
        self.server.wait_until(self._serves_pages, 30, "serving pages")

    def _serves_pages(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
            return False

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=10)
        self.server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self.evaluator is not None:
            self.evaluator.stop(timeout=10)
        self._resources.close()

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
