"""A real `mlflow server` for the hospital-profile tests: a PostgreSQL backend store (through psycopg 3), the
artifact proxy (`--serve-artifacts`, artifacts written by the server into its own folder), on a free loopback
port, as a hospital's ML team runs it. Clients reach artifacts only over HTTP (`mlflow-artifacts:`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    def __init__(self, backend_url: str) -> None:
        self.backend = backend_url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.folder = Path(tempfile.mkdtemp(prefix="modelboard-mlflow-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> MlflowServer:
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend,
             "--serve-artifacts", "--artifacts-destination", (self.folder / "artifacts").as_uri(),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its workers die with it (killpg)
            # No background job runner (seven huey processes in MLflow 3.17): ModelBoard runs no server-side jobs.
            env={**_env(), "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server stopped: {(self.folder / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout_s:g} s")

    def stop(self) -> None:
        """The server and every process it started (uvicorn's workers outlive a parent that is only terminated)."""
        if self.process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=20)
                    time.sleep(0.5)
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self.folder, ignore_errors=True)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELBOARD_"))}
