"""The MLflow tracker against a real embedded store; redaction of secrets."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking.mlflow_tracker import MLflowTracker, TrackingError
from pipeline.tracking.null import NullTracker
from pipeline.tracking.redact import redact, redact_text


def test_metrics_are_written_in_batches(tmp_path, store):
    tracker = MLflowTracker(uri=store["uri"], artifact_dir=str(tmp_path / "art"),
                            flush_interval_s=3600)
    run_id = tracker.start_run("t", tags={"env": "toy"}, experiment="toy")
    calls = []
    real = tracker.client.log_batch
    tracker.client.log_batch = lambda *a, **k: (calls.append(k), real(*a, **k))[1]
    for step in range(2500):
        tracker.log_metrics({"train/loss": step * 0.5, "time/sps": 1.0}, step)
    tracker.end_run()
    assert len(calls) == 5  # 5000 points in batches of 1000, not 5000 calls
    client = MlflowClient(store["uri"])
    history = client.get_metric_history(run_id, "train/loss")
    assert [m.step for m in history] == list(range(2500))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["env"] == "toy"
    assert client.get_experiment(run.info.experiment_id).name == "toy"


def test_resume_reopens_the_same_run(store):
    first = MLflowTracker(uri=store["uri"])
    run_id = first.start_run("t", experiment="toy")
    first.log_metrics({"m": 1.0}, 1)
    first.end_run("KILLED")
    again = MLflowTracker(uri=store["uri"])
    assert again.start_run(run_id=run_id) == run_id
    again.log_metrics({"m": 2.0}, 2)
    again.end_run()
    history = MlflowClient(store["uri"]).get_metric_history(run_id, "m")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0)]


def test_params_and_tags_are_redacted(store):
    tracker = MLflowTracker(uri=store["uri"])
    run_id = tracker.start_run("t", tags={"db": "postgresql://bob:hunter2@db/x"})
    tracker.log_params({"agent.api_key": "sk-test-123", "agent.api_key_env": "OPENAI_API_KEY"})
    tracker.end_run()
    run = MlflowClient(store["uri"]).get_run(run_id)
    assert run.data.params == {"agent.api_key": "***", "agent.api_key_env": "OPENAI_API_KEY"}
    assert run.data.tags["db"] == "postgresql://bob:***@db/x"


def test_unreachable_store_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    tracker = MLflowTracker(uri=f"sqlite:///{blocker}/sub/mlflow.db")
    with pytest.raises((TrackingError, OSError)):
        tracker.start_run("t")


def test_redact_nested_and_uri():
    cfg = {"agent": {"api_key": "abc", "token_budget": None, "model": "gpt"},
           "uri": "http://u:p@host:5000"}
    assert redact(cfg) == {"agent": {"api_key": "***", "token_budget": None, "model": "gpt"},
                           "uri": "http://u:***@host:5000"}
    assert redact_text("no secrets here") == "no secrets here"


def test_null_tracker_is_a_no_op():
    tracker = NullTracker()
    assert tracker.start_run("x") is None
    tracker.log_metrics({"a": 1.0}, 1)
    tracker.log_params({"a": 1})
    tracker.end_run()
    assert tracker.run_id is None


_OPEN_RUN = """
import sys
from pipeline.tracking.mlflow_tracker import MLflowTracker
tracker = MLflowTracker(sys.argv[1], experiment="shared")
tracker.start_run(sys.argv[2])
tracker.end_run()
"""


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_store_at_once_take_turns(tmp_path):
    """Without the store lock one of them crashes in MLflow's schema migration (or in
    creating the same experiment): stack notes, "parallel SQLite migration crash"."""
    import subprocess
    import sys

    from tests.conftest import REPO
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    env = {"PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_RUN, uri, f"job{i}"], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(e[-1500:] for e in errors)
    client = MlflowClient(uri)
    [exp] = [e for e in client.search_experiments() if e.name == "shared"]
    names = sorted(r.info.run_name for r in client.search_runs([exp.experiment_id]))
    assert names == [f"job{i}" for i in range(4)]
    # The lock is on the folder: no lock file is left beside the store.
    assert {p.name for p in (tmp_path / "new").iterdir()} <= {"mlflow.db", "mlartifacts"}
