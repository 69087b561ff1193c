"""The run command (``make run`` -> ``python -m config.stack``): its processes and how it stops.

The live tests start the real runner on free ports with the embedded Redis, and prove that
SIGTERM or SIGINT to it leaves no process of its tree, nor of any session it created, behind.
"""

from __future__ import annotations

import io
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from honcho.printer import Printer

from config import stack
from config.net import free_port
from testing.live import isolated_database
from testing.processes import PYTHON, ROOT, ServerProcess, django_run

# What `make run` starts, as found in the command lines of the runner's process tree.
EVERY_PROCESS = (
    "redis-server",
    "daphne",
    " worker",
    " beat",
    "alarms_evaluate",
    "hl7_listen",
    "simulate",
)


def test_the_dev_procfile_runs_every_production_process_type_and_the_simulator():
    production = stack.procfile_processes(ROOT / "Procfile")
    development = stack.procfile_processes(stack.PROCFILE_DEV)
    # `release` (migrate, collectstatic) is the runner's own set-up step in development.
    assert set(production) - {"release"} <= set(development)
    assert "simulator" in development


def test_a_stop_before_every_process_has_reported_its_start_signals_the_started_ones():
    output = io.StringIO()
    manager = stack.ProcessManager(Printer(output))
    manager.add_process("web", "true")
    manager.add_process("worker", "true")
    # honcho's bookkeeping (honcho 2.0): one started (pid known), one not reported yet.
    manager._processes["web"]["pid"] = os.getpid()
    sent: list[int] = []
    manager._procmgr.terminate = sent.append

    manager.terminate()

    assert sent == [os.getpid()]
    assert "sending SIGTERM to web" in output.getvalue()


# --- live: the real runner -------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database for the runs of this module: the first migrates it, later ones find it so."""
    with isolated_database(tmp_path_factory.mktemp("runner-db")) as url:
        yield url


def runner_env(database_url: str, workdir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VAR_DIR": str(workdir),
        "PORT": str(free_port()),
        "HL7_MLLP_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # as on a fresh clone: the runner starts the embedded Redis
    env.pop("TEST_DATABASE_NAME", None)
    return env


def start_runner(env: dict[str, str], workdir: Path) -> ServerProcess:
    command = [PYTHON, "-m", "config.stack", "--devices", "2", "--rate", "2"]
    return ServerProcess(command, env, workdir / "runner.log")


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def command_lines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return lines


def answers_healthz(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def sessions_of(processes: list[psutil.Process]) -> set[int]:
    sessions = set()
    for process in processes:
        try:
            sessions.add(os.getsid(process.pid))
        except OSError:
            continue
    return sessions - {os.getsid(0)}  # never this test's own session


def still_running(processes: list[psutil.Process], sessions: set[int]) -> list[str]:
    """What is left of ``processes`` (by pid and start time) and of ``sessions``."""
    left = {p.pid: p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in sessions and process.status() != psutil.STATUS_ZOMBIE:
                left[process.pid] = process
        except (OSError, psutil.Error):
            continue
    return command_lines(list(left.values())) or [f"pid {pid}" for pid in left]


def stop_and_check(runner: ServerProcess, signum: int, seen: list[psutil.Process]) -> None:
    """Send ``signum`` to the runner; it must exit with 128 + signum and leave nothing."""
    sessions = sessions_of(seen)
    runner.process.send_signal(signum)
    try:
        runner.process.wait(60)
    finally:
        left = still_running(seen, sessions)
        for process in psutil.process_iter():  # never leave a test's servers running
            try:
                if process.pid in {p.pid for p in seen} or os.getsid(process.pid) in sessions:
                    process.kill()
            except (OSError, psutil.Error):
                continue
        runner.stop()
    assert left == [], f"still running after {signal.Signals(signum).name}: {left}"
    assert runner.process.returncode == 128 + signum, runner.logs()


def wait_until_everything_runs(runner: ServerProcess, env: dict[str, str]) -> list[psutil.Process]:
    seen: list[psutil.Process] = []

    def everything_runs() -> bool:
        seen[:] = process_tree(runner.process.pid)
        lines = command_lines(seen)
        return all(any(word in line for line in lines) for word in EVERY_PROCESS)

    runner.wait_until(lambda: answers_healthz(env["PORT"]), 240, "answering /healthz")
    runner.wait_until(everything_runs, 60, f"running {EVERY_PROCESS}")
    return seen


@pytest.mark.live
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_runner_stops_every_process_it_started(signum, runner_database, tmp_path):
    env = runner_env(runner_database, tmp_path)
    runner = start_runner(env, tmp_path)
    try:
        seen = wait_until_everything_runs(runner, env)
        if signum == signal.SIGTERM:
            # The simulator's readings arrive: the dashboard moves.
            count = "from monitoring.models import Reading\nresult = Reading.objects.count()"
            runner.wait_until(lambda: django_run(env, count) > 0, 60, "storing readings")
    except BaseException:
        for process in process_tree(runner.process.pid):
            process.kill()
        runner.stop()
        raise
    stop_and_check(runner, signum, seen)


@pytest.mark.live
def test_sigterm_while_the_runner_migrates_stops_redis_and_the_migration(tmp_path):
    with isolated_database(tmp_path) as database_url:
        env = runner_env(database_url, tmp_path)
        runner = start_runner(env, tmp_path)
        seen: list[psutil.Process] = []

        def migrating() -> bool:
            seen[:] = process_tree(runner.process.pid)
            lines = command_lines(seen)
            return any("redis-server" in line for line in lines) and any(
                "migrate" in line for line in lines
            )

        runner.wait_until(migrating, 60, "migrating")
        stop_and_check(runner, signal.SIGTERM, seen)
        assert b"Dashboard:" not in runner.output()


@pytest.mark.live
def test_when_one_process_exits_the_runner_stops_the_others_and_exits_with_its_code(
    runner_database, tmp_path
):
    procfile = tmp_path / "Procfile.test"
    procfile.write_text("server: sleep 120\nfailing: sleep 2; exit 3\n")
    env = runner_env(runner_database, tmp_path)
    runner = ServerProcess(
        [PYTHON, "-m", "config.stack", "--procfile", str(procfile)], env, tmp_path / "runner.log"
    )
    seen: list[psutil.Process] = []

    def sleeping() -> bool:
        seen[:] = process_tree(runner.process.pid)
        return any("sleep 120" in line for line in command_lines(seen))

    try:
        runner.wait_until(sleeping, 240, "running the Procfile")
        sessions = sessions_of(seen)
        assert runner.process.wait(60) == 3, runner.logs()
        assert still_running(seen, sessions) == []
    finally:
        for process in process_tree(runner.process.pid):
            process.kill()
        runner.stop()
