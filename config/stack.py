"""Start the whole system on one machine: Redis (embedded unless REDIS_URL is set), migrations,
demo data, the Daphne server, the alarm evaluator, the HL7 MLLP listener, a Celery worker,
Celery beat and the device simulator.

``python -m config.stack [--port 8000] [--devices 12] [--no-simulator]``; Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--rate", type=float, default=1.0, help="simulator readings/s per device")
    parser.add_argument("--devices", type=int, default=None, help="simulate at most this many")
    parser.add_argument("--no-simulator", action="store_true")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    children: list[tuple[str, subprocess.Popen]] = []

    if not env.get("REDIS_URL"):
        from config import embedded_redis

        redis_process, env["REDIS_URL"] = embedded_redis.start()
        children.append(("redis", redis_process))
        print(f"Embedded Redis at {env['REDIS_URL']}", flush=True)

    python = sys.executable
    var_dir = Path(env.get("VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    # Scheduled scans run every few seconds; at INFO they would bury the alert e-mails that
    # the worker prints in development. CELERY_LOG_LEVEL=info shows every task.
    celery_log_level = env.get("CELERY_LOG_LEVEL", "warning")

    def manage(*command: str) -> None:
        subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True)

    def spawn(name: str, *command: str) -> None:
        children.append((name, subprocess.Popen(list(command), cwd=ROOT, env=env)))

    try:
        manage("migrate", "--noinput")
        manage("seed_demo")
        spawn(
            "web",
            python,
            "-m",
            "daphne",
            "-b",
            args.host,
            "-p",
            str(args.port),
            "config.asgi:application",
        )
        spawn("alarms", python, "manage.py", "alarms_evaluate")
        # HL7 v2 over MLLP (PCD-01 in), on HL7_MLLP_PORT (2575).
        spawn("hl7", python, "manage.py", "hl7_listen", "--host", args.host)
        spawn(
            "worker",
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            celery_log_level,
            "--concurrency",
            "2",
        )
        spawn(
            "beat",
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "-l",
            celery_log_level,
            "--schedule",
            str(var_dir / "celerybeat-schedule"),
        )
        if not args.no_simulator:
            spawn(
                "simulator",
                python,
                "manage.py",
                "simulate",
                "--demo",
                "--url",
                f"ws://{args.host}:{args.port}/ws/devices/",
                "--rate",
                str(args.rate),
                *(["--devices", str(args.devices)] if args.devices else []),
            )
        print(
            f"\nDashboard: http://{args.host}:{args.port}/   API docs: "
            f"http://{args.host}:{args.port}/api/docs/   (Ctrl-C stops everything)\n",
            flush=True,
        )
        while True:
            for name, process in list(children):
                if process.poll() is not None:
                    if name == "simulator":
                        # Demo traffic only: the server keeps running without it.
                        print(f"simulator exited with code {process.returncode}.", flush=True)
                        children.remove((name, process))
                        continue
                    print(f"{name} exited with code {process.returncode}; stopping.", flush=True)
                    return process.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for _, process in reversed(children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(children):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
