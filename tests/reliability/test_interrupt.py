"""Ctrl-C or SIGTERM stops a run or a sweep cleanly: its MLflow runs end KILLED (not
RUNNING for ever, not FAILED) and the command exits with 128 + the signal number."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import start_pipeline

# Far more steps than the test waits for: only the signal ends these runs.
LONG = ["run.total_steps=1000000", "run.eval_every=0", "run.eval_episodes=1",
        "run.checkpoint_every=0", "run.progress=false", "agent.hidden_sizes=[64]",
        "agent.action_hidden=16", "callbacks=metrics"]


def _runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("balatro")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def _wait_for_training(proc: subprocess.Popen, client: MlflowClient, child: bool) -> None:
    """Until a (child) run is RUNNING and has logged a training metric."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        for run in _runs(client):
            if (run.info.status == "RUNNING" and "rollout/ep_return" in run.data.metrics
                    and child == ("mlflow.parentRunId" in run.data.tags)):
                return
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"no run started training (rc {proc.poll()}): {proc.stderr.read()[-2000:]}")


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.reliability
def test_sigterm_ends_a_run_killed(tmp_path, store):
    client = MlflowClient(store["uri"])
    proc = start_pipeline(*LONG, *store["overrides"], cwd=tmp_path)
    _wait_for_training(proc, client, child=False)
    code, err = _stop(proc, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1] == "stopped by SIGTERM"
    [run] = _runs(client)
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None


@pytest.mark.slow
@pytest.mark.reliability
def test_ctrl_c_ends_a_sweep_and_its_job_killed(tmp_path, store):
    client = MlflowClient(store["uri"])
    proc = start_pipeline("-m", "seed=0,1", *LONG, *store["overrides"], cwd=tmp_path)
    _wait_for_training(proc, client, child=True)
    code, err = _stop(proc, signal.SIGINT)
    assert code == 128 + signal.SIGINT, err[-2000:]
    runs = _runs(client)
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "KILLED"
    assert parent.data.tags["stopped"] == "the sweep was stopped by SIGINT"
    assert "error" not in parent.data.tags
    # The job in progress was stopped; the next one never started.
    assert [(c.data.tags["seed"], c.info.status) for c in children] == [("0", "KILLED")]
    assert parent.data.metrics["sweep/jobs"] == 1
