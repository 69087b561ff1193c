"""A PostgreSQL server of a test's own (initdb and pg_ctl in a temporary directory, on a free
loopback port), for tests that stop and start the database under a running server.

As root the server runs as the ``postgres`` user (PostgreSQL refuses root), in a directory that
user owns. ``POSTGRES_BIN`` names the binaries' directory; otherwise the newest
/usr/lib/postgresql/*/bin, else whatever ``initdb`` is on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testing.processes import free_port


def postgres_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates = [os.environ.get("POSTGRES_BIN", "")]
    candidates += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    found = shutil.which("initdb")
    candidates += [str(Path(found).parent)] if found else []
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    return None


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class LocalPostgres:
    """One cluster: ``start()``, ``stop(mode)`` (``fast`` or ``immediate``, as an outage),
    ``start()`` again on the same port and data; ``url(name)`` for a database of it."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin = bin_dir
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*_as_postgres_user(), str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def init(self) -> LocalPostgres:
        # --no-sync: a test cluster need not survive a power cut; a server crash it survives.
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "max_connections = 50\n"
            )
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        done = subprocess.run(
            [*_as_postgres_user(), str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        return done.returncode == 0

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def logs(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A started cluster of its own, stopped and removed afterwards."""
    bin_dir = postgres_bin()
    assert bin_dir is not None, "no PostgreSQL binaries (initdb)"
    # Not under pytest's tmp_path: its parents are root's alone, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="test-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = LocalPostgres(root, bin_dir).init()
    server.start()
    try:
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
