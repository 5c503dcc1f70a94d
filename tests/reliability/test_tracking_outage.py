"""Tracking outages: a real `mlflow server` stops mid-run (30 s, then back), or for good.

Training never waits on the server: metric points stay buffered and artifacts queued
while it is down and are written when it returns; if it never returns, everything is
spooled under outputs/spool/<run id>/ and `python -m pipeline.tracking.spool` uploads it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.callbacks.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.tracking.servers import SERVER_ENV, free_port

ENV = {**os.environ, **SERVER_ENV, "PYTHONPATH": str(REPO)}
ENV.pop("HYDRA_FULL_ERROR", None)
ENV.pop("MLFLOW_TRACKING_URI", None)


def _server(port: int, tmp: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{tmp}/server.db", "--artifacts-destination", str(tmp / "server-art"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 400   # seconds usually; far longer on a loaded CI machine
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        assert proc.poll() is None, "mlflow server exited"
        time.sleep(0.3)
    raise RuntimeError("mlflow server did not start")


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _train(url: str, tmp: Path, steps: int) -> subprocess.Popen:
    args = ["tracking=mlflow_server", f"tracking.uri={url}", f"run.total_steps={steps}",
            "run.checkpoint_every=5000", "run.eval_every=0", "run.eval_episodes=5",
            "run.log_every=500", "run.progress=false", "agent.hidden_sizes=[64]",
            "agent.network=mlp", "agent.buffer_size=4000",   # checkpoints of ~20 MB, not ~300 MB
            "tracking.flush_interval_s=0.5", f"hydra.run.dir={tmp}/run",
            f"tracking.spool_dir={tmp}/spool"]
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=tmp, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_run(client: MlflowClient, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        exp = client.get_experiment_by_name("balatro")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and runs[0].data.metrics.get("rollout/ep_return") is not None:
            return runs[0].info.run_id
        time.sleep(0.5)
    raise AssertionError("the run never showed up in the server")


def _check_complete(client: MlflowClient, run_id: str, ckpt: Path) -> None:
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run_id, "rollout/ep_return")
    steps = [m.step for m in history]
    assert len(steps) == len(set(steps)) and steps == sorted(steps)
    # Every finished episode's return reached the store: none lost in the outage.
    assert len(history) == len(load_checkpoint(ckpt)["returns"])
    assert "checkpoints" in {a.path for a in client.list_artifacts(run_id)}


@pytest.mark.reliability
@pytest.mark.server
def test_server_down_for_30_seconds_mid_run_loses_nothing(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _server(port, tmp_path)
    # About 55 s of training on a 2-core machine (~800 steps/s): it must outlast the 30 s
    # outage that starts with its first episode; a slower machine only makes it longer.
    train = _train(url, tmp_path, steps=45_000)
    try:
        run_id = _wait_for_run(MlflowClient(url), train)
        _stop(server)
        time.sleep(30)   # training goes on, its metrics buffered
        assert train.poll() is None, "the run ended during the outage: raise its budget"
        # The server's start-up can take minutes on a loaded machine: the run is paused
        # meanwhile, so it is still training (and buffering) when the server is back.
        train.send_signal(signal.SIGSTOP)
        try:
            server = _server(port, tmp_path)
        finally:
            train.send_signal(signal.SIGCONT)
        out, err = train.communicate(timeout=600)
        assert train.returncode == 0, err[-3000:]
        assert "spool" not in err
        _check_complete(MlflowClient(url), run_id, tmp_path / "run/checkpoints/latest.pt")
    finally:
        if train.poll() is None:
            train.kill()
        _stop(server)


@pytest.mark.reliability
@pytest.mark.server
def test_server_gone_for_good_spools_and_uploads_later(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _server(port, tmp_path)
    train = _train(url, tmp_path, steps=15_000)
    try:
        run_id = _wait_for_run(MlflowClient(url), train)
        _stop(server)
        out, err = train.communicate(timeout=600)
        assert train.returncode == 0, err[-3000:]  # training finished without the server
        spool = tmp_path / "spool" / run_id
        assert f"python -m pipeline.tracking.spool {spool}" in err
        assert (spool / "metrics.jsonl").stat().st_size > 0

        server = _server(port, tmp_path)
        upload = subprocess.run([sys.executable, "-m", "pipeline.tracking.spool", str(spool),
                                 "--uri", url], env=ENV, capture_output=True, text=True,
                                timeout=300)
        assert upload.returncode == 0, upload.stderr[-2000:]
        assert not spool.exists()
        _check_complete(MlflowClient(url), run_id, tmp_path / "run/checkpoints/latest.pt")
    finally:
        if train.poll() is None:
            train.kill()
        _stop(server)
