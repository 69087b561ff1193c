"""config/bootstrap.py's command line: help exits 0, a usage error 2 (nothing installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOOTSTRAP = Path(__file__).resolve().parents[1] / "bootstrap.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BOOTSTRAP), *args], capture_output=True, text=True, timeout=60
    )


def test_help_prints_the_commands_and_exits_0():
    for flag in ("--help", "-h"):
        result = _run(flag)
        assert result.returncode == 0, result.stderr
        assert "run" in result.stdout and "test" in result.stdout and "install" in result.stdout


def test_a_missing_or_unknown_command_is_a_usage_error():
    for args in ((), ("bogus",)):
        result = _run(*args)
        assert result.returncode == 2
        assert "usage: bootstrap.py" in result.stderr


def test_options_after_the_command_go_to_pytest_or_the_stack():
    from config.bootstrap import parser

    options = parser().parse_args(["test", "-m", "not browser", "-x"])
    assert (options.command, options.args) == ("test", ["-m", "not browser", "-x"])
    options = parser().parse_args(["run", "--help"])  # the stack's own help
    assert (options.command, options.args) == ("run", ["--help"])
