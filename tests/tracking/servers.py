"""Real servers for the `server` tests: PostgreSQL from the Debian package, `mlflow server`,
and headless Chromium. .ci/system-deps.sh installs the Debian packages; a test skips (with
the reason) only when they are absent and cannot be installed here."""
from __future__ import annotations

import contextlib
import glob
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
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
# Pitfall 1 of the stack notes: without these `mlflow server` can hang at start-up
# (litellm fetching a cost map) or start seven job workers.
SERVER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
              "MLFLOW_DISABLE_TELEMETRY": "true"}


def require_system_packages(*binaries: str) -> None:
    """Install the Debian packages once if a binary is missing; skip if that is impossible."""
    if all(_which(b) for b in binaries):
        return
    script = REPO / ".ci" / "system-deps.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    missing = [b for b in binaries if not _which(b)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed and {script.name} could not install it "
                    f"(rc {result.returncode}: {result.stderr.strip()[-300:]})")


def _which(binary: str) -> str | None:
    if binary in ("initdb", "pg_ctl", "createdb"):
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"))
        return found[-1] if found else shutil.which(binary)
    return shutil.which(binary)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, no fsync); yields the URI of
    an empty database. PostgreSQL refuses to run as root, so as root it runs as `postgres`."""
    require_system_packages("initdb", "pg_ctl", "createdb")
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def pg(binary: str, *args: str) -> None:
        subprocess.run([*as_user, _which(binary), *args], check=True, capture_output=True,
                       text=True, timeout=120)

    pg("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pg("pg_ctl", "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-o",
       f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def psycopg2_uri(uri: str) -> str:
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the `server` extra installs psycopg2."""
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, timeout: float = 400) -> Iterator[str]:
    """`mlflow server` on a free port of 127.0.0.1, serving artifacts from `artifacts`;
    yields its URL once /health answers (within `timeout`: a few seconds on a quiet machine,
    but one CI run took 150 s for the UI launcher on a loaded one)."""
    port = free_port()
    log = open(artifacts.parent / f"mlflow-server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        env={**os.environ, **SERVER_ENV}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group: uvicorn's worker goes down with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("mlflow server did not start: "
                                   + Path(log.name).read_text()[-2000:])
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def chromium(url: str, *args: str, timeout: int = 90) -> str:
    """Headless Chromium on `url` with extra `args` (--dump-dom, --screenshot=...): stdout."""
    require_system_packages("chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--virtual-time-budget=15000", f"--user-data-dir={profile}", *args, url],
            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
