"""tracking=mlflow_server against a real team setup: PostgreSQL (Debian's package) behind
`mlflow server`, which also serves the artifacts; a joblib sweep of 2 parallel jobs."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.tracking.sweep import OBJECTIVE_METRIC
from tests.conftest import run_pipeline
from tests.tracking.servers import mlflow_server, postgres, psycopg2_uri

CHILD_METRICS = {"rollout/ep_return", "rollout/ep_length", "eval/ep_return", "time/sps",
                 OBJECTIVE_METRIC}


@pytest.mark.server
def test_joblib_sweep_lands_in_a_postgres_backed_server(tmp_path):
    with postgres() as db_uri, mlflow_server(psycopg2_uri(db_uri), tmp_path / "artifacts") as url:
        result = run_pipeline(
            "-m", "tracking=mlflow_server", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "agent=random", "seed=0,1", "debug=smoke", "run.total_steps=300",
            "run.progress=false", "callbacks=[metrics,checkpoint]", cwd=tmp_path,
            env={"MLFLOW_TRACKING_URI": url})
        assert result.returncode == 0, result.stderr[-3000:]

        client = MlflowClient(url)
        exp = client.get_experiment_by_name("balatro")
        runs = client.search_runs([exp.experiment_id])
        [parent] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(runs) == 3 and len(children) == 2
        assert parent.info.status == "FINISHED"
        assert {c.info.run_name for c in children} == {"seed=0", "seed=1"}
        assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= \
            {"leaderboard.md", "leaderboard.csv", "jobs.csv"}
        assert parent.data.metrics["sweep/jobs"] == 2 and parent.data.metrics["sweep/failed"] == 0

        for child in children:
            run_id = child.info.run_id
            assert child.info.status == "FINISHED"
            assert CHILD_METRICS <= set(child.data.metrics), set(child.data.metrics)
            steps = [m.step for m in client.get_metric_history(run_id, "rollout/ep_return")]
            assert steps and steps == sorted(steps) and steps[-1] <= 300
            assert child.data.params["seed"] == child.data.tags["seed"]
            assert {a.path for a in client.list_artifacts(run_id)} >= {"config.yaml",
                                                                     "checkpoints"}
            ckpt = client.download_artifacts(run_id, "checkpoints/latest.pt", str(tmp_path))
            assert load_checkpoint(ckpt)["run_id"] == run_id
        # The artifacts went through the server into its artifact store.
        assert len(list((tmp_path / "artifacts").rglob("latest.pt"))) == 2

        # And the runs are rows in PostgreSQL, not in some local file.
        import psycopg2

        with psycopg2.connect(db_uri) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE experiment_id = %s",
                        (int(exp.experiment_id),))
            assert cur.fetchone()[0] == 3
            cur.execute("SELECT count(*) FROM metrics WHERE key = %s", (OBJECTIVE_METRIC,))
            assert cur.fetchone()[0] == 2
    assert not list(tmp_path.glob("**/mlflow.db"))
