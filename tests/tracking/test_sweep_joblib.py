"""hydra/launcher=joblib: jobs in parallel worker processes, all landing in one SQLite store
(created once by the launching process), comparing agents on the same seeds."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking.sweep import OBJECTIVE_METRIC
from tests.conftest import run_pipeline


@pytest.mark.slow
def test_joblib_sweep_compares_agents_on_the_same_seeds(tmp_path, store):
    result = run_pipeline(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "agent=dqn,heuristic,random",
        "seed=0,1", "debug=smoke", "run.total_steps=300", "run.progress=false",
        "callbacks=metrics", *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr

    client = MlflowClient(store["uri"])
    exp = client.get_experiment_by_name("balatro")
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert parent.data.tags["launcher"] == "JoblibLauncher"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)
    assert {(c.data.tags["agent"], c.data.tags["seed"]) for c in children} == \
        {(a, s) for a in ("dqn", "heuristic", "random") for s in ("0", "1")}
    assert {c.data.params["run.eval_seed"] for c in children} == {"10000"}  # the same deals
    assert all(OBJECTIVE_METRIC in c.data.metrics for c in children)

    # Two worker processes: some jobs ran at the same time.
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans

    assert parent.data.metrics["sweep/jobs"] == 6 and parent.data.metrics["sweep/failed"] == 0
    board = open(client.download_artifacts(parent.info.run_id, "leaderboard.csv",
                                           str(tmp_path))).read()
    for agent in ("agent=dqn", "agent=heuristic", "agent=random"):
        assert f",{agent},2," in board  # one configuration per agent, 2 seeds each
