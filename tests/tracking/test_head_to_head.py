"""The head-to-head leaderboard: evaluation episodes pooled per configuration (mean, IQM,
bootstrap CI of rounds reached and win rate, LLM cost), and the recipe that produces it:
experiment=balatro_head_to_head, here with random vs heuristic, 3 seeds, 3 episodes each."""
from __future__ import annotations

import csv
import io
import math

import pytest
from mlflow.tracking import MlflowClient

from pipeline.stats import bootstrap_ci, iqm
from pipeline.tracking.sweep import H2H_COLUMNS, h2h_csv, h2h_markdown, head_to_head
from tests.conftest import run_pipeline


def _rows(configuration, agent, job, rounds, won, cost=""):
    return [{"job": job, "configuration": configuration, "agent": agent, "episode": str(i),
             "seed": str(10000 + i), "return": str(r / 10), "rounds": str(r), "won": str(w),
             "score": "100", "cost_usd": str(cost)} for i, (r, w) in enumerate(zip(rounds, won))]


def test_head_to_head_pools_jobs_per_configuration():
    heuristic = [_rows("agent=heuristic", "heuristic", j, [18, 15, 24, 6], [0, 0, 1, 0])
                 for j in range(3)]  # deterministic: the same four deals in every job
    random = _rows("agent=random", "random", 3, [1, 1, 1, 1], [0, 0, 0, 0])
    llm = _rows("agent=openai", "openai", 4, [3, 6, 3, 0], [0, 0, 0, 0], cost=0.5)
    board = head_to_head([r for job in heuristic for r in job] + random + llm, resamples=500)

    assert [a.configuration for a in board] == ["agent=heuristic", "agent=openai", "agent=random"]
    h, o, r = board
    assert (h.jobs, h.episodes, h.deals) == (3, 12, 4)
    assert h.rounds_mean == pytest.approx(15.75) and h.rounds_iqm == pytest.approx(iqm([18, 15, 24, 6]))
    assert h.win_mean == pytest.approx(0.25)
    # Copies of a deal are one resampling unit: the interval of the four deals themselves.
    assert h.rounds_ci == pytest.approx(bootstrap_ci([15, 18, 24, 6], resamples=500,
                                                     clusters=["a", "b", "c", "d"]))
    assert h.rounds_ci[0] <= h.rounds_mean <= h.rounds_ci[1]
    assert math.isnan(h.cost_per_episode) and math.isnan(h.rounds_per_usd)
    assert o.cost_per_episode == pytest.approx(0.5) and o.rounds_per_usd == pytest.approx(3.0 / 0.5)
    assert r.rounds_ci == (1.0, 1.0) and r.win_ci == (0.0, 0.0)

    rows = list(csv.DictReader(io.StringIO(h2h_csv(board))))
    assert list(rows[0]) == H2H_COLUMNS and rows[0]["configuration"] == "agent=heuristic"
    text = h2h_markdown(board, 0.95, 500)
    assert "rounds: IQM" in text and "win rate: 95% CI" in text and "| `agent=openai` |" in text


# ---------------------------------------------------------------- slow: the recipe
@pytest.mark.slow
def test_head_to_head_recipe_puts_the_leaderboard_on_the_parent(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_pipeline("experiment=balatro_head_to_head", "agent=heuristic,random",
                          "seed=0,1,2", "run.eval_episodes=3", "run.progress=false",
                          "callbacks=metrics", f"tracking.uri={uri}",
                          f"tracking.artifact_dir={tmp_path}/art", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Head-to-head" in result.stdout and "Downloading artifacts" not in result.stderr

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)
    for child in children:  # every job: full runs, the same 3 deals, one row per episode
        assert child.data.params["env.mode"] == "run" and child.data.params["run.eval_seed"] == "10000"
        assert child.data.params["env.reward"] == "progress"   # the DQN's training reward, for all
        assert child.data.params["run.total_steps"] == "0"     # baselines are only evaluated
        text = open(client.download_artifacts(child.info.run_id, "eval/episodes.csv",
                                              str(tmp_path / child.info.run_id))).read()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["seed"] for r in rows] == ["10000", "10001", "10002"]
        assert set(rows[0]) == {"episode", "seed", "return", "length", "rounds", "won", "score",
                                "cost_usd"}

    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"head_to_head.md", "head_to_head.csv", "head_to_head_episodes.csv",
            "leaderboard.md"} <= names
    board = list(csv.DictReader(open(client.download_artifacts(
        parent.info.run_id, "head_to_head.csv", str(tmp_path / "parent")))))
    assert [r["configuration"] for r in board] == ["agent=heuristic", "agent=random"]
    heuristic, random = board
    assert (heuristic["jobs"], heuristic["episodes"], heuristic["deals"]) == ("3", "9", "3")
    for row in board:
        for key in ("rounds", "win_rate"):
            low, mean, high = (float(row[f"{key}_{s}"]) for s in ("ci_low", "mean", "ci_high"))
            assert low <= mean <= high and math.isfinite(float(row[f"{key}_iqm"]))
    assert float(heuristic["rounds_mean"]) > 3 * float(random["rounds_mean"])
    assert float(random["rounds_mean"]) < 2  # random play seldom clears the first blind
    markdown = open(client.download_artifacts(parent.info.run_id, "head_to_head.md",
                                              str(tmp_path / "parent"))).read()
    assert "IQM" in markdown and "95% CI" in markdown and "`agent=heuristic`" in markdown


@pytest.mark.slow
def test_head_to_head_llm_jobs_take_endpoint_and_model_from_the_environment(tmp_path):
    from tests.llm_server import LLMStubServer

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with LLMStubServer() as server:
        base_url = server.base_url
        result = run_pipeline("experiment=balatro_head_to_head", "agent=openai,heuristic",
                              "seed=0", "run.eval_episodes=1", "run.progress=false",
                              "callbacks=metrics", f"tracking.uri={uri}", f"tracking.artifact_dir={tmp_path}/art",
                              cwd=tmp_path, env={"OPENAI_BASE_URL": base_url,
                                                 "OPENAI_MODEL": "stub", "OPENAI_API_KEY": "x"})
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.stats["answers"] > 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    [llm] = [r for r in runs if r.data.tags.get("agent") == "openai"]
    params = llm.data.params
    assert (params["agent.base_url"], params["agent.model"]) == (base_url, "stub")
    assert params["run.total_steps"] == "1" and params["run.max_cost_usd"] == "2.0"
    [heuristic] = [r for r in runs if r.data.tags.get("agent") == "heuristic"]
    assert "agent.model" not in heuristic.data.params and heuristic.data.params["run.max_cost_usd"] == "None"
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    board = list(csv.DictReader(open(client.download_artifacts(
        parent.info.run_id, "head_to_head.csv", str(tmp_path / "parent")))))
    assert {r["configuration"] for r in board} == {"agent=openai", "agent=heuristic"}
