"""hparams_search=dqn_optuna: the Optuna sweeper (TPE) over the DQN's hyperparameters, each
trial a child run of the sweep's parent."""
from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pipeline.tracking.sweep import OBJECTIVE_METRIC
from tests.conftest import CONF, run_pipeline

SEARCH = {"agent.lr", "agent.gamma", "agent.batch_size", "agent.target_update_interval",
          "agent.eps_decay_steps"}


def test_search_space_names_real_dqn_settings():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hparams_search=dqn_optuna"],
                      return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.sampler.seed is not None and str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert set(sweeper.params) == SEARCH
    for key in SEARCH:  # each key exists in the DQN config (a typo would fail every trial)
        assert OmegaConf.select(cfg, key) is not None, key


@pytest.mark.slow
def test_optuna_trials_are_children_of_one_parent(tmp_path, store):
    result = run_pipeline(
        "hparams_search=dqn_optuna", "hydra.sweeper.n_trials=3", "debug=smoke",
        "run.total_steps=300", "agent.learning_starts=100", "run.progress=false",
        "callbacks=metrics", *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient(store["uri"])
    runs = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert parent.data.tags["sweeper"] == "OptunaSweeper"
    assert parent.data.params["agent.lr"] == "tag(log, interval(1e-5, 3e-3))"
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3 and all(t.info.status == "FINISHED" for t in trials)
    for trial in trials:
        params = trial.data.params
        assert 1e-5 <= float(params["agent.lr"]) <= 3e-3
        assert float(params["agent.gamma"]) in (0.95, 0.98, 0.99, 0.995)
        assert int(params["agent.batch_size"]) in (32, 64, 128)
        assert trial.info.run_name.startswith("agent.lr=")
    objectives = [t.data.metrics[OBJECTIVE_METRIC] for t in trials]
    assert parent.data.metrics["sweep/best_objective"] == max(objectives)

    [results] = tmp_path.glob("outputs/multirun/*/*/optimization_results.yaml")
    assert yaml.safe_load(results.read_text())["best_value"] == pytest.approx(max(objectives))
    assert "optimization_results.yaml" in {a.path for a in client.list_artifacts(
        parent.info.run_id)}
