"""A real, throwaway PostgreSQL server for the tests: Debian's postgresql binaries (installed by .ci/run),
initdb into a fresh folder, started on a free loopback port; a new database per test.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (runuser).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from facegate_process import free_port


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    bindir: Path
    datadir: Path
    port: int

    @property
    def _as(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.datadir / "server.log"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def start_server() -> PostgresServer | None:
    """A started server in a new folder (readable by the server's user), or None without PostgreSQL."""
    bindir = postgres_binaries()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        return None
    folder = Path(tempfile.mkdtemp(prefix="facegate-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(bindir, folder / "data", free_port())
    server.init()
    server.start()
    return server


def remove_server(server: PostgresServer) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        server.stop()
    shutil.rmtree(server.datadir.parent, ignore_errors=True)
