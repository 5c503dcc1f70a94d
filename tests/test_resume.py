"""A run killed with SIGKILL mid-training continues from its checkpoint in the same MLflow run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from pipeline.callbacks.checkpoint import load_checkpoint
from tests.conftest import REPO, run_pipeline, start_pipeline

# The MLP keeps this test short; the Balatro network's resume is checked bit for bit below.
BUDGET = ["run.total_steps=6000", "run.checkpoint_every=1500", "run.eval_every=0",
          "run.eval_episodes=3", "run.log_every=250", "agent.learning_starts=500",
          "run.progress=false", "agent.hidden_sizes=[64]", "agent.network=mlp"]


@pytest.mark.slow
def test_sigkill_then_resume_by_run_id(tmp_path, store):
    run_dir = tmp_path / "first"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *BUDGET, *store["overrides"],
         f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = run_dir / "checkpoints" / "latest.pt"
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            step = load_checkpoint(ckpt)["step"]
            if step >= 3000:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = step
                break
        time.sleep(0.05)
    assert killed_at is not None and killed_at < 6000, proc.stderr.read().decode()[-2000:]

    client = MlflowClient(store["uri"])
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    assert run.info.status == "RUNNING"  # nobody closed it: the process was killed

    (tmp_path / "tmpdir").mkdir()
    result = run_pipeline(*BUDGET, *store["overrides"], f"run.resume={run.info.run_id}",
                          f"hydra.run.dir={tmp_path / 'second'}", cwd=tmp_path,
                          env={"TMPDIR": str(tmp_path / "tmpdir")})
    assert result.returncode == 0, result.stderr[-3000:]
    # The checkpoint downloaded from the store (replay buffer and all) is not left behind.
    assert not list((tmp_path / "tmpdir").glob("checkpoint-*"))

    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [run.info.run_id]  # the same run continued
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    for key in ("train/loss", "rollout/ep_return", "time/sps"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps == sorted(steps), key
        assert len(steps) == len(set(steps)), f"{key} has duplicate steps"
        assert steps[-1] > killed_at
    final = load_checkpoint(tmp_path / "second" / "checkpoints" / "latest.pt")
    assert final["step"] == 6000 and final["run_id"] == run.info.run_id


@pytest.mark.slow
def test_resume_from_a_checkpoint_path_matches_an_uninterrupted_run(tmp_path, store):
    """Full state means full determinism: stop at 1000, resume to 1600 == straight to 1600."""
    # The default (Balatro) Q-network: its resume must be exact as well.
    common = ["run.eval_every=0", "run.eval_episodes=0", "agent.learning_starts=300",
              "run.progress=false", "run.checkpoint_every=500", "agent.hidden_sizes=[64]",
              "agent.action_hidden=16", *store["overrides"]]
    # The uninterrupted run and the first part are independent: run them side by side.
    straight = start_pipeline("run.total_steps=1600", *common, f"hydra.run.dir={tmp_path}/a",
                              "seed=5", cwd=tmp_path)
    part = run_pipeline("run.total_steps=1000", *common, f"hydra.run.dir={tmp_path}/b",
                        "seed=5", cwd=tmp_path)
    assert part.returncode == 0, part.stderr[-2000:]
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err[-2000:]
    rest = run_pipeline("run.total_steps=1600", *common, f"hydra.run.dir={tmp_path}/c",
                        "seed=5", f"run.resume={tmp_path}/b/checkpoints/latest.pt", cwd=tmp_path)
    assert rest.returncode == 0, rest.stderr[-2000:]
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    c = load_checkpoint(tmp_path / "c" / "checkpoints" / "latest.pt")
    assert a["step"] == c["step"] == 1600 and a["episode"] == c["episode"]
    assert a["returns"] == c["returns"]
    for name, tensor in a["agent"]["online"].items():
        assert (tensor == c["agent"]["online"][name]).all(), name


@pytest.mark.slow
def test_bad_resume_id_is_one_line(tmp_path, store):
    result = run_pipeline("run.resume=0123456789abcdef", *store["overrides"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: run.resume: 0123456789abcdef")
