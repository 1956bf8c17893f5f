"""A real PostgreSQL server for the tests: Debian's server binaries, a throw-away cluster in a temporary folder.

Tests and CI run as root, and PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` user
(created by Debian's package) and is started through `runuser`. `make postgres` installs the package where it is
missing, as `make chromium` installs the browser. `python -m tests.postgres_server` starts one by hand and prints
its URL (for trying the hospital profile).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (15 or newer), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    usable = [Path(p).parent for p in found if int(Path(p).parts[-3]) >= 15]
    return usable[-1] if usable else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One cluster on a free loopback port, trusting local connections, tuned for tests (no fsync)."""

    def __init__(self) -> None:
        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL 15+ server binaries are missing: run `make postgres` (Debian's "
                               "postgresql package) or `apt-get install postgresql`")
        self.bin = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="modelboard-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
                  "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self, prefix: str = "modelboard") -> str:
        """A fresh, empty database on this server; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    server = PostgresServer().start()
    print(server.new_database("try"))
    print(f"stop it with: runuser -u postgres -- {server.bin}/pg_ctl -D {server.data} stop", flush=True)
