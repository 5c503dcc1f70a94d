"""`python -m pipeline debug=smoke` end to end, in a subprocess, into a temporary store."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.callbacks.checkpoint import load_checkpoint
from tests.conftest import run_pipeline

EXPECTED_METRICS = {
    "rollout/ep_return", "rollout/ep_length", "rollout/ep_return_mean", "train/loss",
    "train/q_mean", "train/epsilon", "train/buffer_size", "time/sps", "game/ante",
    "game/round", "game/score", "game/won", "eval/ep_return", "eval/won",
}


@pytest.mark.slow
def test_smoke_run_lands_in_mlflow(tmp_path, store):
    result = run_pipeline("debug=smoke", *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mlflow ui --backend-store-uri" in result.stdout

    client = MlflowClient(store["uri"])
    exp = client.get_experiment_by_name("balatro")
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "balatro__dqn__0"
    assert EXPECTED_METRICS <= set(run.data.metrics), set(run.data.metrics)
    params = run.data.params
    assert params["agent.lr"] == "0.00025" and params["env.mode"] == "blind"  # env_agent/balatro_dqn.yaml
    assert params["run.total_steps"] == "1200" and params["seed"] == "0"
    tags = run.data.tags
    assert (tags["env"], tags["agent"], tags["seed"]) == ("balatro", "dqn", "0")
    assert len(tags["git_commit"]) in (40, 7) and len(tags["config_hash"]) == 12

    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] <= 1200

    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints"} <= top
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/latest.pt", str(tmp_path))
    payload = load_checkpoint(ckpt)
    assert payload["step"] == 1200 and payload["run_id"] == run.info.run_id
    assert {"online", "target", "optimizer", "buffer"} <= set(payload["agent"])
    config_text = open(client.download_artifacts(run.info.run_id, "config.yaml",
                                                 str(tmp_path))).read()
    assert "_target_: pipeline.agents.dqn.DQNAgent" in config_text


@pytest.mark.slow
def test_tracking_none_writes_no_mlflow_data(tmp_path):
    result = run_pipeline("debug=smoke", "tracking=none", "agent=random", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tracking" in result.stdout and "none" in result.stdout
    written = {p.name for p in tmp_path.rglob("*")}
    assert not written & {"mlflow.db", "mlartifacts", "mlruns"}, written


@pytest.mark.slow
def test_spelled_out_defaults_are_the_same_run(compose_cfg):
    assert compose_cfg() == compose_cfg("agent=dqn", "env=balatro", "tracking=mlflow")
