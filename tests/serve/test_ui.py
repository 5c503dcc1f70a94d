"""`python -m pipeline.ui`: starts the MLflow UI on the project's store, prints the address,
stops it on SIGTERM; a taken port is one line and exit code 2."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from mlflow.tracking import MlflowClient

from pipeline.serve.ui import port_taken
from tests.conftest import REPO
from tests.serve import free_port


# How long the UI may take to answer. About 7 s on a quiet machine, but a CI run once took
# 150 s on a loaded 2-core machine; the launcher waits as long (its --wait), the test a
# little longer, and both stay under pytest's 600 s per-test limit.
UP_WITHIN_S = 420


def _launch(*args: str, cwd, merge_output: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # merge_output: the server's log goes to the same pipe the test reads while waiting, so
    # an unread stderr pipe can never fill up and block the server.
    return subprocess.Popen([sys.executable, "-m", "pipeline.ui", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE)


@pytest.mark.server
def test_launcher_starts_the_ui_on_the_project_store_and_stops_it(tmp_path):
    # The project's store, as `python -m pipeline` leaves it (outputs/ under the launch dir).
    (tmp_path / "outputs").mkdir()
    MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db").create_experiment("ui-check")
    port = free_port()
    proc = _launch("--port", str(port), "--wait", str(UP_WITHIN_S), cwd=tmp_path,
                   merge_output=True)
    url = f"http://127.0.0.1:{port}"
    printed = ""
    try:
        # The launcher prints the address once the UI answers: wait for that line. Read the
        # pipe's file descriptor directly: proc.stdout.readline() after select() can leave
        # later lines of the same chunk in Python's buffer, where select() never sees them.
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + UP_WITHIN_S + 20
        while f"MLflow UI: {url}" not in printed:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"the UI did not come up: {printed}"
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                printed += os.read(fd, 65536).decode(errors="replace")
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        assert httpx.get(url).status_code == 200  # the UI's page
        found = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name",
                          params={"experiment_name": "ui-check"})
        assert found.status_code == 200, found.text  # it reads the project's store
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=40)
        out = printed + out
    finally:
        _stop_launcher(proc)
    assert proc.returncode == 0, out[-2000:]
    assert f"Starting the MLflow UI on sqlite:///{tmp_path}/outputs/mlflow.db" in out
    assert f"MLflow UI: {url}" in out and "Stopping the MLflow UI" in out
    assert not port_taken("127.0.0.1", port)  # the server went with it


def _stop_launcher(proc) -> None:
    """After a failed check the launcher may still run: SIGTERM lets it stop the UI's own
    process group (a bare SIGKILL would leave `mlflow ui` running for the rest of the suite)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_taken_port_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_taken("127.0.0.1", port)
        proc = _launch("--port", str(port), cwd=tmp_path)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert err == f"error: port {port} is taken (pick another with --port)\n"
    assert not (tmp_path / "outputs").exists()  # refused before anything was created


def test_a_bad_port_is_refused(tmp_path):
    proc = _launch("--port", "70000", cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith("error: --port 70000 is not a TCP port")
