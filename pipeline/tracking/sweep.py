"""Sweeps in MLflow: one parent run per multirun, one child run per job, a leaderboard.

`SweepCallback` is a Hydra callback (registered under `hydra.callbacks.sweep` in
conf/config.yaml). In the launching process, `on_multirun_start` creates the store, the
experiment and the parent run once: parallel jobs that each open a fresh SQLite store race
in its schema migration. Each job learns its parent through environment variables that
`on_job_start` sets in the job's own process (Hydra runs it there for every launcher: in
process, joblib workers, Ray workers; the callback travels with the job), so `run.main`
tags the job's run `mlflow.parentRunId` and puts it in the parent's experiment. An
inherited MLFLOW_RUN_ID is cleared so no job can log into someone else's run.
`on_multirun_end` reads the children back from the store (which works whatever launcher
ran them) and gives the parent a leaderboard and summary metrics, and a head-to-head
leaderboard that pools each configuration's evaluation episodes (`eval/episodes.csv` of
its jobs) with robust statistics (pipeline/stats.py: mean, IQM, bootstrap intervals).

A job that raises is recorded as a FAILED child with its error and returns None: the
basic sweeper ignores it and the Optuna sweeper marks the trial FAIL; either way the
other jobs go on, and the command exits with status 1 at the end (`failed_jobs`). Its
traceback is also written to error.txt in the job's own output folder, which is how a
sweep without tracking counts its failed jobs (any launcher whose workers write to this
machine's disk: in process, joblib, a local Ray).
"""
from __future__ import annotations

import atexit
import json
import logging
import math
import os
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.tracking.redact import redact_text

log = logging.getLogger(__name__)

# Jobs of this process's last finished sweep that FAILED; `pipeline.cli.guarded` turns a
# non-zero count into exit status 1 once Hydra returns.
_failed_jobs = 0


def failed_jobs() -> int:
    return _failed_jobs

# What the launching process tells each job (set by SweepCallback.on_job_start).
PARENT_ENV = "PIPELINE_PARENT_RUN_ID"  # the sweep's parent run (also the sweep id)
EXPERIMENT_ENV = "PIPELINE_SWEEP_EXPERIMENT"  # the parent's experiment: every child lands there
JOB_ENV = "PIPELINE_SWEEP_JOB"  # hydra.job.num of this job
OVERRIDES_ENV = "PIPELINE_SWEEP_OVERRIDES"  # JSON list of the job's swept overrides
SKIP_ENV = "PIPELINE_SWEEP_SKIP_FINISHED"  # "1": reuse a FINISHED run with the same config hash
_ENVS = (PARENT_ENV, EXPERIMENT_ENV, JOB_ENV, OVERRIDES_ENV, SKIP_ENV)

OBJECTIVE_METRIC = "run/objective"  # what run.main returned, logged on every run
SEED_KEY = "seed"  # jobs that differ only in this override are one configuration


# ---------------------------------------------------------------- the job side
@dataclass(frozen=True)
class SweepJob:
    """This process runs one job of a sweep (read from the environment)."""

    parent_run_id: str
    experiment: str
    job: int
    overrides: tuple[str, ...]  # the swept overrides, e.g. ("agent.lr=0.001", "seed=0")
    skip_finished: bool = False

    @property
    def run_name(self) -> str:
        return ",".join(_short(o) for o in self.overrides) or f"job{self.job}"

    @property
    def tags(self) -> dict[str, str]:
        return {"mlflow.parentRunId": self.parent_run_id, "sweep_id": self.parent_run_id,
                "sweep_job": str(self.job), "sweep_overrides": json.dumps(list(self.overrides))}


def current_job() -> SweepJob | None:
    """The sweep job this process is running, or None outside a multirun."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return None
    return SweepJob(parent_run_id=parent, experiment=os.environ.get(EXPERIMENT_ENV, "Default"),
                    job=int(os.environ.get(JOB_ENV, "0")),
                    overrides=tuple(json.loads(os.environ.get(OVERRIDES_ENV, "[]"))),
                    skip_finished=os.environ.get(SKIP_ENV) == "1")


JOB_ERROR_FILE = "error.txt"  # a failed job's traceback, in its output folder and on its run


def _write_job_error(report: str) -> None:
    """error.txt (the redacted traceback) in this job's output folder; a warning if the
    folder cannot be written (the sweep goes on)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        folder = Path(HydraConfig.get().runtime.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / JOB_ERROR_FILE).write_text(report)
    except Exception as ex:  # noqa: BLE001 - the sweep must go on regardless
        log.warning("Could not write the job's %s: %s", JOB_ERROR_FILE, _error_line(ex))


def _untracked_failures(sweep_dir: Path, since: float) -> list[Path]:
    """error.txt files that this sweep's jobs wrote under its folder (a reused
    hydra.sweep.dir may hold older ones: those written before `since` do not count)."""
    if not sweep_dir.is_dir():
        return []
    return sorted(p for p in sweep_dir.rglob(JOB_ERROR_FILE) if p.stat().st_mtime >= since)


def reuse_finished(cfg: DictConfig, job: SweepJob) -> float | None:
    """With skip_finished: the objective of a FINISHED run with this job's config hash in
    the sweep's experiment, recorded as a child of this sweep (tag reused_run_id); else None."""
    store = _store(cfg.tracking) if job.skip_finished else None
    if store is None:
        return None
    from pipeline.run import config_hash

    exp = store.client.get_experiment_by_name(job.experiment)
    if exp is None:
        return None
    runs = store.client.search_runs(
        [exp.experiment_id], f"tags.config_hash = '{config_hash(cfg)}' and "
        "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], max_results=20)
    for old in runs:
        metrics = old.data.metrics
        value = metrics.get(OBJECTIVE_METRIC, metrics.get(cfg.run.objective))
        if value is None:
            continue
        tags = {k: v for k, v in old.data.tags.items() if not k.startswith("mlflow.")}
        store.start_run(job.run_name, tags={**tags, **job.tags, "reused_run_id": old.info.run_id},
                        experiment=job.experiment)
        store.log_params(old.data.params)
        store.log_metrics({**metrics, OBJECTIVE_METRIC: value}, step=0)
        store.end_run("FINISHED")
        log.info("Skipped %s: finished before as run %s (objective %.4g)", job.run_name,
                 old.info.run_id, value)
        return float(value)
    return None


def job_failed(cfg: DictConfig, ex: BaseException) -> None:
    """Record a job's exception on its child run (FAILED, tag `error`, artifact error.txt),
    creating the child if the job failed before its run started. Returns the job's result:
    None, which sweepers take as a failed trial without stopping the sweep."""
    job = current_job()
    log.error("Job failed: %s", _error_line(ex), exc_info=ex)
    report = redact_text("".join(traceback.format_exception(ex)))
    _write_job_error(report)
    store = _store(cfg.tracking) if job is not None else None
    if store is None:
        return None
    try:
        client = store.client
        exp = client.get_experiment_by_name(job.experiment)
        found = client.search_runs(
            [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{job.parent_run_id}' and "
            f"tags.sweep_job = '{job.job}'", order_by=["attributes.start_time DESC"],
            max_results=1) if exp is not None else []
        if found:
            run_id = found[0].info.run_id
        else:  # failed before run.main started its run (a bad value, a build error)
            run_id = store.start_run(job.run_name, tags={**_job_config_tags(cfg), **job.tags},
                                     experiment=job.experiment)
            store.end_run("FAILED")
        client.set_tag(run_id, "error", _error_line(ex)[:5000])
        client.log_text(run_id, report, JOB_ERROR_FILE)
        client.set_terminated(run_id, "FAILED")
    except Exception as record_ex:  # noqa: BLE001 - the sweep must go on regardless
        log.warning("Could not record the failure in MLflow: %s", _error_line(record_ex))
    return None


# ---------------------------------------------------------------- the Hydra callback
class SweepCallback(Callback):
    """A parent MLflow run per multirun; children nest under it; a leaderboard at the end."""

    def __init__(self, skip_finished: bool = False, confidence: float = 0.95,
                 head_to_head: bool = True, bootstrap_resamples: int = 2000) -> None:
        self.skip_finished = skip_finished
        self.confidence = confidence
        self.head_to_head = head_to_head
        self.bootstrap_resamples = int(bootstrap_resamples)
        self.parent_run_id: str | None = None
        self.experiment: str | None = None
        self.swept: list[str] = []  # override keys that vary across jobs
        self.params: dict[str, Any] = {}  # the sweeper's own search space (Optuna's params)
        self._tracker: Any = None  # the parent's tracker: launching process only
        self._config: DictConfig | None = None
        self._finished = False
        self._started = 0.0  # when on_multirun_start ran (time.time())

    def __getstate__(self) -> dict[str, Any]:  # travels to joblib/Ray workers without the tracker
        return {k: v for k, v in self.__dict__.items() if k not in ("_tracker", "_config")}

    # ---- launching process
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop("MLFLOW_RUN_ID", None)
        params = OmegaConf.select(config, "hydra.sweeper.params")
        self.params = OmegaConf.to_container(params) if params is not None else {}
        self.swept = swept_keys(list(config.hydra.overrides.task), self.params)
        self._started = time.time() - 1.0   # file times can be a little coarse
        tracker = _store(config.tracking)
        if tracker is None:
            log.info("Sweep: tracking is off, no parent run or leaderboard")
            return
        self.experiment = tracker.experiment or config.env.name
        sweep_args = [o for o in config.hydra.overrides.task if _key(o) in self.swept]
        name = config.name or (f"sweep {' '.join(sweep_args)}" if sweep_args else
                               f"{_plugin(config, 'sweeper')} over {', '.join(self.swept)}")
        tags = {"sweep_role": "parent", "sweeper": _plugin(config, "sweeper"),
                "launcher": _plugin(config, "launcher"),
                "sweep_dir": str(Path(config.hydra.sweep.dir).resolve()),
                "objective": config.run.objective}
        # Creating the parent creates the store and the experiment, once, before any job.
        self.parent_run_id = tracker.start_run(name[:250], tags=tags, experiment=self.experiment)
        tracker.set_tags({"sweep_id": self.parent_run_id})
        tracker.log_params({**{_key(o): o.split("=", 1)[1] for o in config.hydra.overrides.task
                               if "=" in o and not _key(o).startswith("tracking")},
                            **self.params})
        self._tracker, self._config = tracker, config
        atexit.register(self._abandoned)
        log.info("Sweep: parent run %s in experiment %s", self.parent_run_id, self.experiment)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._tracker is not None and not self._finished:
            self._finish(config, status=None)
        elif self._tracker is None:
            self._count_untracked_failures(Path(config.hydra.sweep.dir))
        # Hydra's sweeper saved the command line in multirun.yaml: no password stays there.
        saved = Path(config.hydra.sweep.dir) / "multirun.yaml"
        if saved.exists():
            saved.write_text(redact_text(saved.read_text()))
        for key in _ENVS:
            os.environ.pop(key, None)

    def _count_untracked_failures(self, sweep_dir: Path) -> None:
        """Without tracking there is no store to read the jobs back from: their error.txt
        files say which failed (and make the command exit with status 1)."""
        global _failed_jobs
        failed = _untracked_failures(sweep_dir, self._started)
        _failed_jobs = len(failed)
        if failed:
            print(f"{len(failed)} job(s) FAILED (tracking is off; their tracebacks: "
                  f"{', '.join(str(p) for p in failed)})")

    def _abandoned(self) -> None:
        """At exit without on_multirun_end: close the parent, KILLED after Ctrl-C or
        SIGTERM (`pipeline.cli.stopped_by`), FAILED when the sweeper raised."""
        if self._tracker is None or self._finished:
            return
        from pipeline import cli

        try:
            if cli.stopped_by is not None:
                self._tracker.set_tags({"stopped": f"the sweep was stopped by "
                                                   f"{signal.Signals(cli.stopped_by).name}"})
                self._finish(self._config, status="KILLED")
                return
            self._tracker.set_tags({"error": "the sweep stopped before its end (see the console)"})
            self._finish(self._config, status="FAILED")
        except Exception as ex:  # noqa: BLE001 - exiting anyway; say why the parent stays open
            log.warning("Could not close the sweep's parent run: %s", _error_line(ex))

    def _finish(self, config: DictConfig, status: str | None) -> None:
        self._finished = True
        tracker = self._tracker
        jobs = child_results(tracker.client, tracker.experiment_id, self.parent_run_id)
        maximize = _maximize(OmegaConf.select(config, "hydra.sweeper.direction"))
        board = leaderboard(jobs, self.confidence, maximize)
        out = Path(tempfile.mkdtemp(prefix="leaderboard-"))
        objective = str(config.run.objective)
        for name, text in (("leaderboard.md", to_markdown(board, jobs, objective, maximize,
                                                          self.confidence)),
                           ("leaderboard.csv", configs_csv(board)), ("jobs.csv", jobs_csv(jobs))):
            (out / name).write_text(text)
            tracker.log_artifact(out / name)
        h2h = self._head_to_head(tracker, jobs, out) if self.head_to_head else []
        optuna_results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
        if optuna_results.exists():  # the Optuna sweeper's best params and value
            tracker.log_artifact(optuna_results)
        finite = [j for j in jobs if math.isfinite(j.objective)]
        best = (max if maximize else min)(finite, key=lambda j: j.objective, default=None)
        failed = sum(j.status == "FAILED" for j in jobs)
        global _failed_jobs
        _failed_jobs = failed
        metrics = {"sweep/jobs": len(jobs), "sweep/failed": failed,
                   "sweep/finished": sum(j.status == "FINISHED" for j in jobs)}
        if best is not None:
            metrics["sweep/best_objective"] = best.objective
            tracker.set_tags({"best_run_id": best.run_id, "best_job": best.name})
        if board and math.isfinite(board[0].mean):
            metrics["sweep/best_mean"] = board[0].mean
            tracker.set_tags({"best_configuration": board[0].configuration})
        tracker.log_metrics(metrics, step=0)
        status = status or ("FINISHED" if len(jobs) > failed or not jobs else "FAILED")
        tracker.end_run(status)   # uploads (or spools) the files in `out` first
        shutil.rmtree(out, ignore_errors=True)
        print_leaderboard(board, jobs, objective, self.confidence, tracker.describe(),
                          self.parent_run_id)
        if h2h:
            print_head_to_head(h2h, self.confidence)

    def _head_to_head(self, tracker: Any, jobs: list[JobResult], out: Path) -> list[AgentResult]:
        """head_to_head.md, head_to_head.csv and head_to_head_episodes.csv on the parent;
        nothing when no job left evaluation episodes. A failure here is logged: the parent
        still gets its leaderboard and is closed."""
        try:
            episodes = child_episodes(tracker.client, jobs, out / "episodes")
            board = head_to_head(episodes, self.confidence, self.bootstrap_resamples)
            if board:
                for name, text in (("head_to_head.md", h2h_markdown(
                        board, self.confidence, self.bootstrap_resamples)),
                                   ("head_to_head.csv", h2h_csv(board)),
                                   ("head_to_head_episodes.csv", episodes_csv(episodes))):
                    (out / name).write_text(text)
                    tracker.log_artifact(out / name)
            return board
        except Exception as ex:  # noqa: BLE001 - the sweep's own results come first
            log.warning("Sweep: the head-to-head leaderboard failed: %s", _error_line(ex))
            return []

    # ---- each job's process
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:  # a single run, or a sweep without tracking
            return
        os.environ.pop("MLFLOW_RUN_ID", None)
        overrides = [o for o in config.hydra.overrides.task if _key(o) in self.swept]
        os.environ.update({PARENT_ENV: self.parent_run_id, EXPERIMENT_ENV: self.experiment,
                           JOB_ENV: str(config.hydra.job.num),
                           OVERRIDES_ENV: json.dumps(overrides),
                           SKIP_ENV: "1" if self.skip_finished else "0"})


# ---------------------------------------------------------------- the leaderboard
@dataclass
class JobResult:
    job: int
    name: str
    overrides: list[str]
    status: str
    objective: float  # NaN unless FINISHED
    run_id: str
    reused_run_id: str = ""
    agent: str = ""  # the run's `agent` tag (agent.name)

    @property
    def configuration(self) -> str:
        """The job's overrides without the seed: the jobs a mean is taken over."""
        rest = [_short(o) for o in self.overrides if _key(o) != SEED_KEY]
        return ",".join(rest) or "(base config)"


@dataclass
class ConfigResult:
    configuration: str
    n: int  # jobs with a finite objective (seeds)
    failed: int
    mean: float
    ci_low: float
    ci_high: float
    std: float
    best: float


def child_results(client: Any, experiment_id: str, parent_run_id: str) -> list[JobResult]:
    """Every child run of the sweep's parent, read from the store, in job order."""
    jobs, token = [], None
    while True:
        page = client.search_runs([experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                                  max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            value = run.data.metrics.get(OBJECTIVE_METRIC, math.nan)
            jobs.append(JobResult(
                job=int(tags.get("sweep_job", -1)), name=run.info.run_name or "",
                overrides=_json_list(tags.get("sweep_overrides")), status=run.info.status,
                objective=float(value) if run.info.status == "FINISHED" else math.nan,
                run_id=run.info.run_id, reused_run_id=tags.get("reused_run_id", ""),
                agent=tags.get("agent", "")))
        token = page.token
        if not token:
            return sorted(jobs, key=lambda j: j.job)


def leaderboard(jobs: list[JobResult], confidence: float = 0.95,
                maximize: bool = True) -> list[ConfigResult]:
    """Jobs grouped by configuration (overrides minus the seed), best mean first, with a
    Student-t confidence interval of the mean across seeds (none for a single seed)."""
    import numpy as np

    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        groups.setdefault(job.configuration, []).append(job)
    board = []
    for name, members in groups.items():
        values = np.array([j.objective for j in members if math.isfinite(j.objective)])
        n = len(values)
        mean = float(values.mean()) if n else math.nan
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        half = t_quantile(confidence, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        best = float(values.max() if maximize else values.min()) if n else math.nan
        board.append(ConfigResult(name, n, sum(j.status == "FAILED" for j in members), mean,
                                  mean - half, mean + half, std, best))
    sign = -1.0 if maximize else 1.0
    return sorted(board, key=lambda c: (not math.isfinite(c.mean), sign * c.mean
                                        if math.isfinite(c.mean) else 0.0))


def t_quantile(confidence: float, dof: int) -> float:
    """The two-sided Student-t critical value (scipy, which mlflow already depends on)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def to_markdown(board: list[ConfigResult], jobs: list[JobResult], objective: str,
                maximize: bool, confidence: float) -> str:
    pct = f"{confidence:.0%}"
    lines = [f"# Sweep leaderboard: {objective} ({'higher' if maximize else 'lower'} is better)",
             "", f"Mean across seeds with a {pct} Student-t confidence interval.", "",
             f"| rank | configuration | seeds | mean | {pct} CI | std | best | failed |",
             "|---:|---|---:|---:|---|---:|---:|---:|"]
    for rank, c in enumerate(board, 1):
        ci = f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]" if math.isfinite(c.ci_low) else "-"
        lines.append(f"| {rank} | `{c.configuration}` | {c.n} | {_fmt(c.mean)} | {ci} | "
                     f"{_fmt(c.std)} | {_fmt(c.best)} | {c.failed} |")
    lines += ["", "## Jobs", "", "| job | overrides | status | objective | run |",
              "|---:|---|---|---:|---|"]
    for j in jobs:
        note = f" (reused {j.reused_run_id})" if j.reused_run_id else ""
        lines.append(f"| {j.job} | `{j.name}` | {j.status} | {_fmt(j.objective)} | "
                     f"{j.run_id}{note} |")
    return "\n".join(lines) + "\n"


def configs_csv(board: list[ConfigResult]) -> str:
    return _csv(["rank", "configuration", "seeds", "mean", "ci_low", "ci_high", "std", "best",
                 "failed"], [[i, c.configuration, c.n, c.mean, c.ci_low, c.ci_high, c.std,
                              c.best, c.failed] for i, c in enumerate(board, 1)])


def jobs_csv(jobs: list[JobResult]) -> str:
    return _csv(["job", "configuration", "overrides", "status", "objective", "run_id",
                 "reused_run_id"], [[j.job, j.configuration, " ".join(j.overrides), j.status,
                                     j.objective, j.run_id, j.reused_run_id] for j in jobs])


def print_leaderboard(board: list[ConfigResult], jobs: list[JobResult], objective: str,
                      confidence: float, store: dict[str, str], parent_run_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Sweep leaderboard: {objective}",
                  caption=f"parent run {parent_run_id}; {store.get('ui', '')}")
    for col, justify in (("#", "right"), ("configuration", "left"), ("seeds", "right"),
                         (f"mean +- {confidence:.0%} CI", "right"), ("best", "right"),
                         ("failed", "right")):
        table.add_column(col, justify=justify)
    for rank, c in enumerate(board, 1):
        half = (c.ci_high - c.ci_low) / 2
        mean = _fmt(c.mean) + (f" +- {_fmt(half)}" if math.isfinite(half) else "")
        table.add_row(str(rank), c.configuration, str(c.n), mean, _fmt(c.best),
                      f"[red]{c.failed}[/]" if c.failed else "0")
    console = Console()
    console.print(table)
    failed = sum(j.status == "FAILED" for j in jobs)
    if failed:
        console.print(f"[red]{failed} of {len(jobs)} jobs FAILED[/] (their runs carry the "
                      "error: tag `error`, artifact error.txt)")


# ---------------------------------------------------------------- the head-to-head leaderboard
EPISODES_ARTIFACT = "eval/episodes.csv"  # each run's final evaluation, one row per episode


@dataclass
class AgentResult:
    """One configuration's evaluation episodes, pooled over its finished jobs."""

    configuration: str
    agent: str
    jobs: int
    episodes: int
    deals: int  # distinct evaluation seeds: the bootstrap's resampling unit
    rounds_mean: float
    rounds_iqm: float
    rounds_ci: tuple[float, float]
    win_mean: float
    win_iqm: float
    win_ci: tuple[float, float]
    return_mean: float
    score_mean: float
    cost_per_episode: float  # mean LLM cost per episode (USD); NaN for agents without one
    rounds_per_usd: float  # rounds_mean / cost_per_episode; NaN without a cost


def child_episodes(client: Any, jobs: list[JobResult], folder: Path) -> list[dict[str, Any]]:
    """The rows of every finished job's eval/episodes.csv (from the reused run for a
    skipped job), each with its job's number, configuration and agent added."""
    import csv

    rows: list[dict[str, Any]] = []
    quiet = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # one bar per download would flood the console
    saved = os.environ.get(quiet)
    os.environ[quiet] = "false"
    try:
        for job in jobs:
            if job.status != "FINISHED":
                continue
            run_id = job.reused_run_id or job.run_id
            try:
                path = client.download_artifacts(run_id, EPISODES_ARTIFACT,
                                                 str(folder / str(job.job)))
            except Exception:  # noqa: BLE001 - a run without an evaluation has no episodes
                log.debug("Sweep: job %s has no %s", job.job, EPISODES_ARTIFACT)
                continue
            with open(path, newline="") as f:
                rows += [{"job": job.job, "configuration": job.configuration,
                          "agent": job.agent, **row} for row in csv.DictReader(f)]
    finally:
        if saved is None:
            os.environ.pop(quiet, None)
        else:
            os.environ[quiet] = saved
    return rows


def head_to_head(episodes: list[dict[str, Any]], confidence: float = 0.95,
                 resamples: int = 2000, seed: int = 0) -> list[AgentResult]:
    """Episodes grouped by configuration (the agent, in `agent=a,b seed=0,1,2` sweeps):
    mean, IQM and a percentile-bootstrap interval of rounds reached and of the win rate
    (resampling evaluation seeds with all their episodes, fixed `seed`), mean return and
    final score, and for LLM agents the cost per episode and rounds per dollar. Best first:
    by mean rounds reached, then win rate, then return, then rounds per dollar."""
    from pipeline.stats import bootstrap_ci, iqm

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in episodes:
        groups.setdefault(row["configuration"], []).append(row)
    board = []
    for name, rows in groups.items():
        deals = [r.get("seed") for r in rows]

        def column(key: str) -> np.ndarray:
            return np.array([_float(r.get(key)) for r in rows], dtype=float)

        def summary(key: str) -> tuple[float, float, tuple[float, float]]:
            x = column(key)
            finite = x[~np.isnan(x)]
            if finite.size == 0:
                return math.nan, math.nan, (math.nan, math.nan)
            return (float(finite.mean()), iqm(finite),
                    bootstrap_ci(x, np.mean, resamples=resamples, confidence=confidence,
                                 seed=seed, clusters=deals))

        rounds, wins = summary("rounds"), summary("won")
        cost = _nanmean(column("cost_usd"))
        board.append(AgentResult(
            configuration=name, agent=",".join(sorted({str(r["agent"]) for r in rows})),
            jobs=len({r["job"] for r in rows}), episodes=len(rows), deals=len(set(deals)),
            rounds_mean=rounds[0], rounds_iqm=rounds[1], rounds_ci=rounds[2],
            win_mean=wins[0], win_iqm=wins[1], win_ci=wins[2],
            return_mean=_nanmean(column("return")), score_mean=_nanmean(column("score")),
            cost_per_episode=cost,
            rounds_per_usd=rounds[0] / cost if cost > 0 else math.nan))

    def rank(a: AgentResult) -> tuple[float, ...]:
        return tuple(-v if math.isfinite(v) else math.inf
                     for v in (a.rounds_mean, a.win_mean, a.return_mean, a.rounds_per_usd))

    return sorted(board, key=rank)


def h2h_markdown(board: list[AgentResult], confidence: float, resamples: int) -> str:
    pct = f"{confidence:.0%}"
    lines = ["# Head-to-head: evaluation episodes pooled per configuration", "",
             "Each row pools the final-evaluation episodes (`eval/episodes.csv`) of the "
             "configuration's finished jobs. IQM: mean of the middle 50% of the episodes. "
             f"{pct} CI: percentile bootstrap of the mean, {resamples} resamples (seed 0) of the "
             "evaluation seeds, each with all of its episodes. Rounds reached: the game's round "
             "counter at the end (3 per ante; episode length for envs without rounds). Cost: "
             "LLM spend per episode; rounds per USD = mean rounds reached / mean cost per "
             "episode.", "",
             f"| rank | configuration | agent | jobs | episodes | rounds: mean | rounds: IQM | "
             f"rounds: {pct} CI | win rate: mean | win rate: IQM | win rate: {pct} CI | "
             "mean return | mean final score | cost / episode (USD) | rounds per USD |",
             "|---:|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    for i, a in enumerate(board, 1):
        lines.append(
            f"| {i} | `{a.configuration}` | {a.agent} | {a.jobs} | {a.episodes} | "
            f"{_fmt(a.rounds_mean)} | {_fmt(a.rounds_iqm)} | {_interval(a.rounds_ci)} | "
            f"{_fmt(a.win_mean)} | {_fmt(a.win_iqm)} | {_interval(a.win_ci)} | "
            f"{_fmt(a.return_mean)} | {_fmt(a.score_mean)} | {_fmt(a.cost_per_episode)} | "
            f"{_fmt(a.rounds_per_usd)} |")
    return "\n".join(lines) + "\n"


H2H_COLUMNS = ["rank", "configuration", "agent", "jobs", "episodes", "deals", "rounds_mean",
               "rounds_iqm", "rounds_ci_low", "rounds_ci_high", "win_rate_mean",
               "win_rate_iqm", "win_rate_ci_low", "win_rate_ci_high", "return_mean",
               "score_mean", "cost_per_episode_usd", "rounds_per_usd"]


def h2h_csv(board: list[AgentResult]) -> str:
    return _csv(H2H_COLUMNS, [[i, a.configuration, a.agent, a.jobs, a.episodes, a.deals,
                               a.rounds_mean, a.rounds_iqm, *a.rounds_ci, a.win_mean, a.win_iqm,
                               *a.win_ci, a.return_mean, a.score_mean, a.cost_per_episode,
                               a.rounds_per_usd] for i, a in enumerate(board, 1)])


def episodes_csv(episodes: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for row in episodes for k in row))
    return _csv(keys, [[row.get(k, "") for k in keys] for row in episodes])


def print_head_to_head(board: list[AgentResult], confidence: float) -> None:
    from rich.console import Console
    from rich.table import Table

    pct = f"{confidence:.0%}"
    llm = any(math.isfinite(a.cost_per_episode) for a in board)
    table = Table(title="Head-to-head: evaluation episodes pooled per configuration",
                  caption=f"rounds reached and win rate: mean, IQM, {pct} bootstrap CI over "
                          "evaluation seeds (head_to_head.md on the parent run)")
    columns = ["#", "configuration", "episodes", "rounds", "IQM", f"{pct} CI", "win rate",
               f"{pct} CI", "return"] + (["USD / episode", "rounds / USD"] if llm else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for i, a in enumerate(board, 1):
        cells = [str(i), a.configuration, str(a.episodes), _fmt(a.rounds_mean),
                 _fmt(a.rounds_iqm), _interval(a.rounds_ci), _fmt(a.win_mean),
                 _interval(a.win_ci), _fmt(a.return_mean)]
        if llm:
            cells += [_fmt(a.cost_per_episode), _fmt(a.rounds_per_usd)]
        table.add_row(*cells)
    Console().print(table)


def _interval(ci: tuple[float, float]) -> str:
    low, high = ci
    return f"[{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) else "-"


def _float(value: Any) -> float:
    """A CSV cell or a number as a float; NaN for an empty cell or None."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _nanmean(x: np.ndarray) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.mean()) if finite.size else math.nan


# ---------------------------------------------------------------- helpers
def swept_keys(task_overrides: list[str], sweeper_params: dict[str, Any]) -> list[str]:
    """Override keys whose value varies across the sweep's jobs (command line sweeps such as
    `seed=0,1,2` and the sweeper's own params, e.g. Optuna's search space)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = list(task_overrides) + [f"{k}={v}" for k, v in (sweeper_params or {}).items()]
    parsed = OverridesParser.create().parse_overrides(lines)
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    return list(dict.fromkeys(keys))


def _store(tracking: DictConfig) -> Any:
    """The MLflow tracker for a tracking config, or None when it is not MLflow."""
    from hydra.utils import instantiate

    from pipeline.tracking.mlflow_tracker import MLflowTracker

    conf = OmegaConf.to_container(tracking, resolve=True)
    conf.pop("name", None)
    tracker = instantiate(conf)
    return tracker if isinstance(tracker, MLflowTracker) else None


def _job_config_tags(cfg: DictConfig) -> dict[str, str]:
    tags = {"env": str(OmegaConf.select(cfg, "env.name")),
            "agent": str(OmegaConf.select(cfg, "agent.name")), "seed": str(cfg.seed)}
    try:
        from pipeline.run import config_hash

        tags["config_hash"] = config_hash(cfg)
    except Exception:  # noqa: BLE001 - a config that does not resolve has no hash
        pass
    return tags


def _plugin(config: DictConfig, kind: str) -> str:
    target = str(OmegaConf.select(config, f"hydra.{kind}._target_") or "")
    return target.rsplit(".", 1)[-1]


def _maximize(direction: Any) -> bool:
    """The sweeper's direction (Optuna's; the first of several); maximize when it has none."""
    if isinstance(direction, (list, tuple)) or OmegaConf.is_list(direction):
        direction = direction[0] if len(direction) else None
    return "min" not in str(direction).lower()


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:  # a tag cut at MLflow's length limit
        return []
    return value if isinstance(value, list) else []


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _short(override: str) -> str:
    """`agent.lr=0.000314159` -> `agent.lr=0.0003142`: readable run names for Optuna floats."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    if any(c in value for c in ".eE") and math.isfinite(number):
        return f"{key}={number:.4g}"
    return override


def _error_line(ex: BaseException) -> str:
    """The innermost cause's type and first line (Hydra wraps build errors)."""
    while ex.__cause__ is not None:
        ex = ex.__cause__
    lines = str(ex).strip().splitlines()
    return f"{type(ex).__name__}: {lines[0] if lines else ''}"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
