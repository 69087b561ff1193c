#!/usr/bin/env python3
"""Set up the virtual environment, then run the system or the tests.

Needs nothing but Python 3.11: ``python3 config/bootstrap.py run`` or ``... test [pytest args]``.
The Makefile's ``run`` and ``test`` targets call this. Installs again only when a
requirements file changed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "requirements-dev.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before the venv exists
        sys.exit("Python 3.11 or newer is required.")
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".requirements.sha256"
    digest = _requirements_digest()
    if not stamp.exists() or stamp.read_text() != digest:
        print("Installing pinned requirements into .venv ...", flush=True)
        subprocess.run(
            [
                str(PYTHON),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
                str(ROOT / "requirements-dev.txt"),
            ],
            check=True,
        )
        stamp.write_text(digest)


def parser() -> argparse.ArgumentParser:
    """``--help`` prints this and exits 0; a missing or unknown command is a usage error (2)."""
    p = argparse.ArgumentParser(
        prog="bootstrap.py",
        description="Set up .venv (installs again only when a requirements file changed), "
        "then run the system or the tests.",
        epilog="Examples: bootstrap.py run --port 8001 · bootstrap.py test -m 'not browser' -x",
    )
    p.add_argument(
        "command",
        choices=("run", "test", "install"),
        help="run: the whole system (config.stack); test: pytest; install: only set up .venv",
    )
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        help="passed on to config.stack (run) or pytest (test)",
    )
    return p


def main(argv: list[str]) -> int:
    options = parser().parse_args(argv)
    ensure_venv()
    os.chdir(ROOT)
    command, rest = options.command, options.args
    if command == "install":
        return 0
    if command == "run":
        args = [str(PYTHON), "-m", "config.stack", *rest]
    else:
        args = [str(PYTHON), "-m", "pytest", *rest]
    os.execv(args[0], args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
