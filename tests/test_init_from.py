"""run.init_from: a new run that starts from a trained agent. With run.total_steps=0 it is
an evaluation of that agent on the seeds the user picks (held-out seeds: run.eval_seed)."""
from __future__ import annotations

import csv

import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline.agents.dqn import DQNAgent
from pipeline.envs.balatro import BalatroEnv
from pipeline.run import evaluate
from tests.conftest import run_pipeline

TINY = ["debug=smoke", "agent.network=mlp", "agent.hidden_sizes=[32]", "agent.learning_starts=100",
        "run.progress=false", "callbacks=[metrics,checkpoint,best_model]"]


def _runs(client: MlflowClient):
    exp = client.get_experiment_by_name("balatro")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.mark.slow
def test_evaluate_a_trained_run_on_new_seeds(tmp_path, store):
    first = run_pipeline(*TINY, *store["overrides"], "run.total_steps=600",
                         f"hydra.run.dir={tmp_path / 'train'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    client = MlflowClient(store["uri"])
    [trained] = _runs(client)

    result = run_pipeline(*TINY, *store["overrides"], "run.total_steps=0",
                          f"run.init_from={trained.info.run_id}", "run.eval_episodes=4",
                          "run.eval_seed=20000", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(client)
    assert len(runs) == 2 and runs[0].info.run_id == trained.info.run_id
    evaluation = runs[1]
    assert evaluation.info.status == "FINISHED"
    assert evaluation.data.params["run.init_from"] == trained.info.run_id
    assert "train/loss" not in evaluation.data.metrics   # nothing was trained
    # ... and nothing to checkpoint: the agent is the trained run's.
    assert not (tmp_path / "eval" / "checkpoints").exists()
    assert "checkpoints" not in {a.path for a in client.list_artifacts(evaluation.info.run_id)}

    # The same numbers as the trained agent played greedily on seeds 20000..20003 here.
    env = BalatroEnv(mode="blind", max_steps=300)
    agent = DQNAgent(env.observation_space, env.action_space, network="mlp", hidden_sizes=[32],
                     device="cpu")
    payload = torch.load(tmp_path / "train" / "checkpoints" / "latest.pt", weights_only=False)
    agent.load_state_dict(payload["agent"])
    rows: list[dict] = []
    expected = evaluate(agent, env, 4, 20000, rows=rows)
    assert evaluation.data.metrics["eval/ep_return"] == pytest.approx(expected["eval/ep_return"])
    with open(tmp_path / "eval" / "eval" / "episodes.csv") as f:
        logged = list(csv.DictReader(f))
    assert [int(r["seed"]) for r in logged] == [20000, 20001, 20002, 20003]
    assert [float(r["return"]) for r in logged] == pytest.approx([r["return"] for r in rows])
    # An evaluation registers no new "best" version: the trained run's versions stay the only ones.
    versions = client.search_model_versions("name='balatro_dqn_best_episode'")
    assert {v.run_id for v in versions} == {trained.info.run_id}

    # A registered network (models:/...) loads into the online and target networks.
    by_uri = run_pipeline(*TINY, *store["overrides"], "run.total_steps=0", "run.eval_episodes=4",
                          "run.init_from=models:/balatro_dqn_best_episode@best",
                          "run.eval_seed=20000", f"hydra.run.dir={tmp_path / 'uri'}", cwd=tmp_path)
    assert by_uri.returncode == 0, by_uri.stderr[-3000:]
    assert _runs(client)[2].data.metrics["eval/ep_return"] > -1.0


@pytest.mark.parametrize("overrides, message", [
    (["run.init_from=no/such/checkpoint.pt"], "run.init_from: no/such/checkpoint.pt does not exist"),
    (["run.init_from=x.pt", "run.resume=y.pt"], "run.init_from: cannot be combined with run.resume"),
    (["run.total_steps=-1"], "run.total_steps: -1 is not allowed (expected a number >= 0)"),
])
def test_bad_init_from_is_one_line_and_writes_nothing(tmp_path, overrides, message):
    result = run_pipeline("debug=smoke", "tracking=none", *overrides, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"] or \
        result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_baseline_evaluates_without_training(tmp_path):
    result = run_pipeline("agent=heuristic", "tracking=none", "run.total_steps=0",
                          "run.eval_episodes=3", "run.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval return (3 greedy episodes)" in result.stdout and "steps  " in result.stdout
