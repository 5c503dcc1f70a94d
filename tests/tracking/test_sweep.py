"""Sweeps in MLflow with Hydra's basic launcher: a parent run, nested children named from
their overrides, a leaderboard with confidence intervals, failed jobs recorded, re-launches
that skip finished jobs, and no hijacking by an inherited MLFLOW_RUN_ID."""
from __future__ import annotations

import csv
import io
import math
import pickle

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking.sweep import (OBJECTIVE_METRIC, JobResult, SweepCallback, current_job,
                                     leaderboard, swept_keys, t_quantile)
from tests.conftest import run_pipeline

# Tiny DQN jobs: about a second each. agent.device=nonexistent fails while the agent is built.
SWEEP = ["-m", "agent.device=cpu,nonexistent", "seed=0,1", "debug=smoke", "run.total_steps=300",
         "agent.learning_starts=100", "agent.batch_size=16", "run.progress=false",
         "callbacks=metrics"]
GOOD = {"agent.device=cpu,seed=0", "agent.device=cpu,seed=1"}
BAD = {"agent.device=nonexistent,seed=0", "agent.device=nonexistent,seed=1"}


def _job(job: int, overrides: list[str], value: float, status: str = "FINISHED") -> JobResult:
    return JobResult(job, ",".join(overrides), overrides, status, value, f"run{job}")


# ---------------------------------------------------------------- fast: the pieces
def test_leaderboard_groups_seeds_with_a_t_interval():
    jobs = [_job(0, ["agent.lr=0.1", "seed=0"], 1.0), _job(1, ["agent.lr=0.1", "seed=1"], 2.0),
            _job(2, ["agent.lr=0.1", "seed=2"], 3.0), _job(3, ["agent.lr=0.2", "seed=0"], 5.0),
            _job(4, ["agent.lr=0.2", "seed=1"], math.nan, "FAILED"),
            _job(5, ["agent.lr=0.3", "seed=0"], math.nan, "FAILED")]
    board = leaderboard(jobs, confidence=0.95, maximize=True)
    assert [c.configuration for c in board] == ["agent.lr=0.2", "agent.lr=0.1", "agent.lr=0.3"]
    top, mid, last = board
    assert (top.n, top.failed, top.mean, top.best) == (1, 1, 5.0, 5.0)
    assert math.isnan(top.ci_low)  # one seed: no interval
    assert (mid.n, mid.failed, mid.mean, mid.std) == (3, 0, 2.0, 1.0)
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2 dof) * s / sqrt(n)
    assert mid.ci_low == pytest.approx(2.0 - half) and mid.ci_high == pytest.approx(2.0 + half)
    assert (last.n, last.failed) == (0, 1) and math.isnan(last.mean)
    assert [c.configuration for c in leaderboard(jobs, maximize=False)][:2] == \
        ["agent.lr=0.1", "agent.lr=0.2"]
    assert t_quantile(0.95, 2) == pytest.approx(4.302652729911275)


def test_swept_keys_come_from_sweeps_and_sweeper_params():
    keys = swept_keys(["agent.lr=1e-3,3e-4", "seed=0,1,2", "debug=smoke", "agent=dqn"],
                      {"agent.gamma": "choice(0.9, 0.99)", "agent.batch_size": "64"})
    assert keys == ["agent.lr", "seed", "agent.gamma"]


def test_job_context_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("PIPELINE_PARENT_RUN_ID", raising=False)
    assert current_job() is None
    monkeypatch.setenv("PIPELINE_PARENT_RUN_ID", "abc")
    monkeypatch.setenv("PIPELINE_SWEEP_EXPERIMENT", "balatro")
    monkeypatch.setenv("PIPELINE_SWEEP_JOB", "3")
    monkeypatch.setenv("PIPELINE_SWEEP_OVERRIDES", '["agent.lr=0.000314159", "seed=1"]')
    job = current_job()
    assert job.run_name == "agent.lr=0.0003142,seed=1" and job.experiment == "balatro"
    assert job.tags["mlflow.parentRunId"] == "abc" and job.tags["sweep_job"] == "3"
    assert not job.skip_finished


def test_callback_travels_to_workers_without_its_tracker():
    callback = SweepCallback(skip_finished=True)
    callback.parent_run_id, callback._tracker = "abc", object()
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.parent_run_id == "abc" and copy.skip_finished and not hasattr(copy, "_tracker")


# ---------------------------------------------------------------- slow: real sweeps
@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory):
    """One sweep of 4 jobs (2 fail) into a fresh store, launched with an inherited
    MLFLOW_RUN_ID pointing at an unrelated run."""
    tmp = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    outsider = client.create_run(client.create_experiment("elsewhere")).info.run_id
    (tmp / "tmpdir").mkdir()
    result = run_pipeline(*SWEEP, f"tracking.uri={uri}", f"tracking.artifact_dir={tmp}/art",
                          cwd=tmp, env={"MLFLOW_RUN_ID": outsider, "TMPDIR": f"{tmp}/tmpdir"})
    assert result.returncode == 1, result.stderr[-3000:]   # 2 of its jobs failed
    assert not list((tmp / "tmpdir").glob("leaderboard-*"))   # uploaded, then removed
    return {"tmp": tmp, "uri": uri, "client": client, "result": result, "outsider": outsider}


def _sweep_runs(client: MlflowClient):
    exp = client.get_experiment_by_name("balatro")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    return parents, runs


@pytest.mark.slow
def test_parent_and_children_are_nested_and_named(first_sweep):
    client = first_sweep["client"]
    [parent], runs = _sweep_runs(client)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and len(children) == 4
    assert {c.info.run_name for c in children} == GOOD | BAD
    assert {c.info.experiment_id for c in children} == {parent.info.experiment_id}
    assert all(c.data.tags["sweep_id"] == parent.info.run_id for c in children)
    assert parent.info.run_name == "sweep agent.device=cpu,nonexistent seed=0,1"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["agent.device"] == "cpu,nonexistent"
    assert "Sweep leaderboard" in first_sweep["result"].stdout


@pytest.mark.slow
def test_leaderboard_on_the_parent(first_sweep, tmp_path):
    client = first_sweep["client"]
    [parent], runs = _sweep_runs(client)
    finished = {r.info.run_name: r.data.metrics[OBJECTIVE_METRIC] for r in runs
                if r.info.run_name in GOOD}
    metrics = parent.data.metrics
    assert (metrics["sweep/jobs"], metrics["sweep/failed"]) == (4, 2)
    assert metrics["sweep/best_objective"] == max(finished.values())
    assert metrics["sweep/best_mean"] == pytest.approx(sum(finished.values()) / 2)
    assert parent.data.tags["best_configuration"] == "agent.device=cpu"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= \
        {"leaderboard.md", "leaderboard.csv", "jobs.csv"}
    rows = list(csv.DictReader(io.StringIO(open(client.download_artifacts(
        parent.info.run_id, "leaderboard.csv", str(tmp_path))).read())))
    assert [r["configuration"] for r in rows] == ["agent.device=cpu", "agent.device=nonexistent"]
    cpu = rows[0]
    assert (cpu["seeds"], cpu["failed"], rows[1]["failed"]) == ("2", "0", "2")
    assert float(cpu["ci_low"]) <= float(cpu["mean"]) <= float(cpu["ci_high"])
    markdown = open(client.download_artifacts(parent.info.run_id, "leaderboard.md",
                                              str(tmp_path))).read()
    assert "95% CI" in markdown and "`agent.device=cpu`" in markdown


@pytest.mark.slow
def test_a_failing_job_is_a_failed_child_and_the_others_finish(first_sweep, tmp_path):
    client = first_sweep["client"]
    _, runs = _sweep_runs(client)
    status = {r.info.run_name: r.info.status for r in runs}
    assert all(status[name] == "FINISHED" for name in GOOD)
    for run in runs:
        if run.info.run_name in BAD:
            assert run.info.status == "FAILED"
            assert "nonexistent" in run.data.tags["error"]
            text = open(client.download_artifacts(run.info.run_id, "error.txt",
                                                  str(tmp_path))).read()
            assert "Traceback" in text and "nonexistent" in text
    assert "2 of 4 jobs FAILED" in first_sweep["result"].stdout


@pytest.mark.slow
def test_an_untracked_sweep_with_a_failed_job_exits_1_and_keeps_the_traceback(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_pipeline("-m", "agent.device=cpu,nonexistent", "debug=smoke", "tracking=none",
                          "run.total_steps=50", "agent.learning_starts=20", "agent.batch_size=8",
                          "run.progress=false", "callbacks=metrics",
                          f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    [error] = sorted(sweep_dir.glob("*/error.txt"))
    assert error.parent.name == "1" and "nonexistent" in error.read_text()
    assert "Traceback" in error.read_text() and not (sweep_dir / "0" / "error.txt").exists()
    assert "1 job(s) FAILED" in result.stdout and str(error) in result.stdout
    # The same folder swept again without failures: the old error.txt does not count.
    again = run_pipeline("-m", "agent.device=cpu", "debug=smoke", "tracking=none",
                         "run.total_steps=50", "agent.learning_starts=20", "agent.batch_size=8",
                         "run.progress=false", "callbacks=metrics",
                         f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.slow
def test_an_inherited_mlflow_run_id_does_not_hijack_the_sweep(first_sweep):
    client = first_sweep["client"]
    outsider = client.get_run(first_sweep["outsider"])
    assert outsider.data.metrics == {} and outsider.data.params == {}
    assert outsider.info.status == "RUNNING"  # as it was created; nothing ended it
    _, runs = _sweep_runs(client)
    assert first_sweep["outsider"] not in {r.info.run_id for r in runs}
    assert all(r.data.tags.get("mlflow.parentRunId") != first_sweep["outsider"] for r in runs)


@pytest.mark.slow
def test_relaunch_skips_jobs_that_finished(first_sweep):
    tmp, uri, client = first_sweep["tmp"], first_sweep["uri"], first_sweep["client"]
    before = {r.info.run_name: r.info.run_id for r in _sweep_runs(client)[1]
              if r.info.run_name in GOOD}
    result = run_pipeline(*SWEEP, f"tracking.uri={uri}", f"tracking.artifact_dir={tmp}/art",
                          "hydra.callbacks.sweep.skip_finished=true", cwd=tmp)
    assert result.returncode == 1, result.stderr[-3000:]   # the failing jobs fail again
    parents, runs = _sweep_runs(client)
    assert len(parents) == 2
    second = parents[-1].info.run_id
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == second}
    assert set(children) == GOOD | BAD
    for name in GOOD:  # reused: same objective, pointing at the run that produced it
        child = children[name]
        assert child.info.status == "FINISHED"
        assert child.data.tags["reused_run_id"] == before[name]
        assert child.data.metrics[OBJECTIVE_METRIC] == \
            client.get_run(before[name]).data.metrics[OBJECTIVE_METRIC]
    assert all(children[name].info.status == "FAILED" for name in BAD)  # failures run again
    assert result.stderr.count("Skipped agent.device=cpu") == 2
    assert parents[-1].data.metrics["sweep/jobs"] == 4
