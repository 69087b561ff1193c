"""Child processes of a test run (and of the benchmark): Daphne and Celery servers that log
to a file, management commands, and short Django snippets that seed or read a database.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from config.net import free_port as free_port  # re-exported: the one definition is in config

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DAPHNE_LISTENING = rb"Listening on TCP address 127\.0\.0\.1:(\d+)"


def database_url() -> str:
    """The URL of the database this process uses, for child processes that must use it too."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = ""
    if db.get("USER"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "") + "@"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def child_env(db_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: this run's Redis and the database ``db_url``."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
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


class ServerProcess:
    """A server process logging to a file, in its own session so that stopping it reaches
    whatever it forked. Readiness is read from its log or probed; a failure shows the log.
    ``echo_log``: print the log when stopped (pytest shows it for a failed test); off for a
    command whose own output is on stdout."""

    def __init__(
        self, command: list[str], env: dict[str, str], log: Path, *, echo_log: bool = True
    ) -> None:
        self.log = log
        self.echo_log = echo_log
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
        if self.echo_log:
            print(f"--- {self.log.name} (pid {self.process.pid}) ---\n{self.logs()}")


class Daphne(ServerProcess):
    """Daphne serving ``app``; ``port=None`` binds a free port chosen by the OS.
    Started at once; ``wait_ready()`` before use (servers can start side by side)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        port: int | None = None,
        *,
        app: str = "config.asgi:application",
        echo_log: bool = True,
    ) -> None:
        endpoint = f"tcp:port={port or 0}:interface=127.0.0.1"
        command = [PYTHON, "-m", "daphne", "-e", endpoint, app]
        super().__init__(command, env, log, echo_log=echo_log)
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


class Evaluator(ServerProcess):
    """``manage.py alarms_evaluate``, the alarm evaluator reading the readings stream, with more
    command ``options``; ``wait_ready()`` waits for its first partition assignment (possibly
    none yet, while a dead evaluator's leases run out)."""

    def __init__(
        self, env: dict[str, str], log: Path, *options: str, echo_log: bool = True
    ) -> None:
        command = [PYTHON, "manage.py", "alarms_evaluate", *options]
        super().__init__(command, env, log, echo_log=echo_log)

    def wait_ready(self, timeout: float = 60) -> Evaluator:
        self.wait_for(rb"owns partitions", timeout)
        return self


class Hl7Listener(ServerProcess):
    """``manage.py hl7_listen`` on a free port (``.port`` once ``wait_ready()`` returned)."""

    def __init__(
        self, env: dict[str, str], log: Path, *options: str, echo_log: bool = True
    ) -> None:
        command = [PYTHON, "manage.py", "hl7_listen", "--port", "0", *options]
        super().__init__(command, env, log, echo_log=echo_log)
        self.port = 0

    def wait_ready(self, timeout: float = 60) -> Hl7Listener:
        pattern = rb"HL7 MLLP listener on 127\.0\.0\.1:(\d+)"
        self.port = int(self.wait_for(pattern, timeout).group(1))
        return self
