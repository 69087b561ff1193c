"""Start the whole system on one machine (``make run``): Redis (embedded unless REDIS_URL is
set), migrations, demo data, then the processes of ``Procfile.dev`` under honcho: the Daphne
server, a Celery worker, Celery beat, the alarm evaluator and the device simulator.

``python -m config.stack [--port 8000] [--devices 12] [--no-simulator]``. SIGTERM or SIGINT
(Ctrl-C) stops everything: honcho sends SIGTERM to each process's own process group, waits
for them (SIGKILL after a few seconds), and the embedded Redis stops last.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

ROOT = Path(__file__).resolve().parent.parent
PROCFILE_DEV = ROOT / "Procfile.dev"
STOP_TIMEOUT = 10.0


class Stopped(Exception):
    """SIGTERM or SIGINT arrived before honcho took over the signals."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


class ProcessManager(Manager):
    """honcho's manager, signalling only the processes whose start it has heard of.

    honcho 2.0 looks up every process's pid when told to stop and fails on one whose start
    message it has not read yet (a signal in the first moments of ``loop()``), which would
    leave the others running. A process that reports its start after the stop began is killed
    by the manager's own deadline (``KILL_WAIT``) once the others have stopped.
    """

    def _killall(self, force: bool = False) -> None:
        for name, process in self._processes.items():
            if "returncode" in process or "pid" not in process:
                continue
            self._system_print(
                f"sending {'SIGKILL' if force else 'SIGTERM'} to {name} (pid {process['pid']})\n"
            )
            if force:
                self._procmgr.kill(process["pid"])
            else:
                self._procmgr.terminate(process["pid"])


def procfile_processes(path: Path) -> dict[str, str]:
    """The process types of a Procfile and their commands, in file order."""
    return dict(parse_procfile(path.read_text()).processes)


def _run_step(command: list[str], env: dict[str, str]) -> int:
    """Run one set-up command to completion; stopped with the runner if a signal comes."""
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return process.wait()
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every process: what ``Procfile.dev`` refers to, this Python first."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("VAR_DIR", str(ROOT / "var"))
    # Scheduled scans run every few seconds; at INFO they would bury the alert e-mails that
    # the worker prints in development. CELERY_LOG_LEVEL=info shows every task.
    env.setdefault("CELERY_LOG_LEVEL", "warning")
    env["HOST"], env["PORT"] = args.host, str(args.port)
    # The demo logs in by password as every role (README's demo logins); production requires
    # a second factor of administrators (MFA_REQUIRED_ROLES defaults to admin; docs/security.md).
    env.setdefault("MFA_REQUIRED_ROLES", "")
    env["SIMULATOR_RATE"] = str(args.rate)
    env["SIMULATOR_DEVICES"] = str(args.devices or "")
    # `python` in the Procfile is this interpreter (the virtual environment's).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--rate", type=float, default=1.0, help="simulator readings/s per device")
    parser.add_argument("--devices", type=int, default=None, help="simulate at most this many")
    parser.add_argument("--no-simulator", action="store_true")
    parser.add_argument("--procfile", type=Path, default=PROCFILE_DEV)
    args = parser.parse_args(argv)

    env = run_environment(args)
    processes = procfile_processes(args.procfile)
    if args.no_simulator:
        processes.pop("simulator", None)
    Path(env["VAR_DIR"]).mkdir(parents=True, exist_ok=True)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stopped)
    redis: subprocess.Popen[bytes] | None = None
    try:
        if not env.get("REDIS_URL"):
            from config import embedded_redis

            # Its own session: Ctrl-C in the terminal reaches the runner, which stops Redis
            # after the processes that use it.
            redis, env["REDIS_URL"] = embedded_redis.start(
                workdir=Path(env["VAR_DIR"]), new_session=True
            )
            print(f"Embedded Redis at {env['REDIS_URL']}", flush=True)
        python = sys.executable
        for step in (["migrate", "--noinput"], ["seed_demo"]):
            returncode = _run_step([python, "manage.py", *step], env)
            if returncode:
                return returncode
        manager = ProcessManager(Printer(sys.stdout))
        for name, command in processes.items():
            manager.add_process(name, command, env=env, cwd=str(ROOT))
        print(
            f"\nDashboard: http://{args.host}:{args.port}/   API docs: "
            f"http://{args.host}:{args.port}/api/docs/   (Ctrl-C stops everything)\n",
            flush=True,
        )
        manager.loop()  # honcho handles SIGTERM and SIGINT from here on
        # The first process to stop decides, as a shell would say it (killed by N: 128 + N).
        returncode = int(manager.returncode or 0)
        return 128 - returncode if returncode < 0 else returncode
    except Stopped as stopped:
        return 128 + stopped.signum
    finally:
        if redis is not None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not orphan it
            _stop(redis)


if __name__ == "__main__":
    sys.exit(main())
