"""run.max_cost_usd and the per-dollar objective, against the local stub server: an LLM
agent's run stops cleanly once its LLM spend reaches the limit (training or evaluation),
says so, and returns its objective from the evaluation episodes that finished. Also the
named prompt variants and the Optuna cost recipe (hparams_search=llm_optuna_cost)."""
from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.agents.llm import build_agent
from pipeline.agents.llm.prompts import SYSTEM_PROMPTS
from pipeline.envs.balatro import BalatroEnv
from tests.conftest import run_pipeline
from tests.llm_server import LLMStubServer

# The stub counts 1 token per 4 characters: at 100 USD per million tokens a Balatro turn
# costs about 0.04-0.06 USD and a blind (4 turns) about 0.2 USD.
PRICE = "+agent.prices.stub=[100.0,100.0]"


@pytest.fixture
def server():
    with LLMStubServer() as stub:
        yield stub


def llm_overrides(server: LLMStubServer, *extra: str) -> list[str]:
    return ["agent=openai", f"agent.base_url={server.base_url}", "agent.model=stub",
            "agent.api_key_env=null", PRICE, "agent.tracing=false", "env.mode=blind",
            "callbacks=metrics", "callbacks.llm.log_model=false", "run.total_steps=1",
            "run.eval_every=0", "run.progress=false", *extra]


def episodes_csv(root: Path) -> list[dict[str, str]]:
    [path] = root.glob("outputs/runs/*/*/eval/episodes.csv")
    return list(csv.DictReader(open(path)))


def test_the_budget_cuts_the_evaluation_and_the_objective_counts_finished_episodes(
        server, compose_cfg, tmp_path, monkeypatch, caplog):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(*llm_overrides(server, "tracking=none", "run.eval_episodes=5",
                                     "run.max_cost_usd=0.6", "run.objective=eval/round_per_usd"))
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        objective = pipeline_run.main(cfg)

    rows = episodes_csv(tmp_path)
    assert 1 <= len(rows) < 5, "the limit stops the evaluation part-way"
    assert [int(r["seed"]) for r in rows] == list(range(10000, 10000 + len(rows)))
    costs = [float(r["cost_usd"]) for r in rows]
    assert all(c > 0 for c in costs)
    rounds = [float(r["rounds"]) for r in rows]
    assert objective == pytest.approx(np.mean(rounds) / np.mean(costs))  # eval/round_per_usd
    assert "Run stopped by its LLM budget" in caplog.text
    assert f"{len(rows)} of 5 evaluation episodes finished" in caplog.text


def test_a_budget_spent_in_training_stops_it_and_leaves_no_objective(
        server, compose_cfg, tmp_path, monkeypatch, caplog):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(*llm_overrides(server, "tracking=none", "run.total_steps=50",
                                     "run.eval_episodes=3", "run.max_cost_usd=0.01"))
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        objective = pipeline_run.main(cfg)
    assert math.isnan(objective)  # not the training return: no evaluation episode finished
    assert "Stopping training at step 1:" in caplog.text
    assert not list(tmp_path.glob("outputs/runs/*/*/eval/episodes.csv"))
    assert server.stats["answers"] == 1, "nothing more is spent once the limit is reached"


def test_a_per_dollar_objective_needs_an_llm_cost(compose_cfg, tmp_path, monkeypatch, caplog):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg("agent=random", "tracking=none", "callbacks=metrics", "run.total_steps=5",
                      "run.eval_episodes=2", "run.progress=false",
                      "run.objective=eval/round_per_usd", "run.max_cost_usd=1.0")
    with caplog.at_level(logging.WARNING, logger="pipeline.run"):
        assert math.isnan(pipeline_run.main(cfg))
    assert "run.max_cost_usd=1.0 has no effect: agent random calls no LLM" in caplog.text
    assert "this agent calls no LLM" in caplog.text


def test_prompt_variants_replace_the_system_prompt(server):
    env = BalatroEnv(mode="blind")
    config = {"name": "openai", "model": "stub", "base_url": server.base_url,
              "api_key_env": None, "prompt_variant": "concise"}
    agent = build_agent(config, env)
    assert agent.cfg.system_prompt == SYSTEM_PROMPTS["concise"]
    obs, info = env.reset(seed=1)
    agent.act(obs, info)
    assert "Keep your reasoning to one short sentence." in server.prompts[-1]
    with pytest.raises(ValueError, match=r"agent.prompt_variant: 'verbose' is not a prompt"):
        build_agent({**config, "prompt_variant": "verbose"}, env)


def test_cost_search_space_names_real_llm_settings(compose_cfg):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from tests.conftest import CONF

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hparams_search=llm_optuna_cost"],
                      return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert set(params) == {"agent.model", "agent.temperature", "agent.history",
                           "agent.prompt_variant"}
    for key in params:  # each key exists in the openai agent's config
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key
    models = params["agent.model"].removeprefix("choice(").removesuffix(")").split(", ")
    assert set(models) <= set(cfg.agent.prices), "every model has a price"
    variants = params["agent.prompt_variant"].removeprefix("choice(").removesuffix(")")
    assert set(variants.split(", ")) <= set(SYSTEM_PROMPTS)
    assert cfg.run.objective == "eval/round_per_usd" and cfg.run.max_cost_usd > 0
    assert cfg.agent.name == "openai" and cfg.env.mode == "run"


# ---------------------------------------------------------------- slow: in MLflow, and the recipe
@pytest.mark.slow
def test_a_budget_stop_is_recorded_on_the_run(server, compose_cfg, store, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(*llm_overrides(server, *store["overrides"], "run.eval_episodes=5",
                                     "run.max_cost_usd=0.6", "run.objective=eval/round_per_usd"))
    objective = pipeline_run.main(cfg)

    client = MlflowClient(store["uri"])
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["stopped"] == "budget"
    metrics = run.data.metrics
    rows = episodes_csv(tmp_path)
    assert metrics["run/budget_stopped"] == 1.0
    assert metrics["run/eval_episodes_finished"] == len(rows) < 5
    assert metrics["run/objective"] == pytest.approx(objective)
    spent = metrics["run/cost_usd"]
    assert spent == pytest.approx(metrics["llm/total_cost_usd"])
    # Checked after every step: at most one turn's cost over the limit.
    assert 0.6 <= spent < 0.6 + max(float(r["cost_usd"]) for r in rows)
    assert metrics["eval/cost_usd"] == pytest.approx(np.mean([float(r["cost_usd"]) for r in rows]))


@pytest.mark.slow
def test_the_cost_search_runs_trials_under_their_budget(server, tmp_path, store):
    from mlflow import MlflowClient

    # A search key on the command line replaces the recipe's range (here: the stub's model).
    result = run_pipeline("hparams_search=llm_optuna_cost", "hydra.sweeper.n_trials=2",
                          "agent.model=choice(stub)", PRICE, f"agent.base_url={server.base_url}",
                          "agent.api_key_env=null", "run.eval_episodes=5", "run.max_cost_usd=0.5",
                          "run.progress=false",
                          "callbacks=metrics", "callbacks.llm.log_model=false",
                          *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store["uri"])
    runs = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and all(t.info.status == "FINISHED" for t in trials)
    for trial in trials:
        params, metrics = trial.data.params, trial.data.metrics
        assert params["agent.model"] == "stub" and params["agent.prompt_variant"] in SYSTEM_PROMPTS
        assert metrics["llm/total_cost_usd"] >= 0.5 and trial.data.tags["stopped"] == "budget"
        assert 1 <= metrics["run/eval_episodes_finished"] < 5
        assert metrics["run/objective"] == pytest.approx(
            metrics["eval/round"] / metrics["eval/cost_usd"])
    assert parent.data.metrics["sweep/best_objective"] == max(
        t.data.metrics["run/objective"] for t in trials)
    assert "head_to_head.md" in {a.path for a in client.list_artifacts(parent.info.run_id)}
