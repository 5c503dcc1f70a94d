"""ReportCallback: after a smoke run, report/report.md and report/reward_curve.png are artifacts."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image


@pytest.mark.slow
def test_smoke_run_logs_the_report_and_the_curve(compose_cfg, store, tmp_path, monkeypatch):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)  # outputs/ goes under tmp_path
    cfg = compose_cfg("debug=smoke", "agent=random", "run.eval_every=600", "run.progress=false",
                      *store["overrides"])
    pipeline_run.main(cfg)

    client = MlflowClient(store["uri"])
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    run_id = run.info.run_id
    assert {Path(a.path).name for a in client.list_artifacts(run_id, "report")} == {
        "report.md", "reward_curve.png"}
    png = client.download_artifacts(run_id, "report/reward_curve.png", str(tmp_path / "dl"))
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] >= 400
    text = Path(client.download_artifacts(run_id, "report/report.md", str(tmp_path / "dl"))).read_text()
    assert "balatro / random / seed 0" in text and run_id in text
    assert "| eval/ep_return |" in text and "| last evaluation | at step 1200 |" in text
    assert "`replays/episode_0.npz`" in text and "`media/episode_000000.gif`" in text
    assert f"python -m pipeline.replay run_id={run_id} episode=0" in text


# ---------------------------------------------------------------- baselines and models
def _report_of_last_run(tmp_path: Path) -> str:
    paths = tmp_path.glob("outputs/runs/*/*/report/report.md")
    return max(paths, key=lambda p: p.stat().st_mtime_ns).read_text()


def test_report_runs_after_best_model_and_replay(compose_cfg):
    order = list(compose_cfg().callbacks)
    assert order.index("report") > max(order.index("best_model"), order.index("replay"),
                                       order.index("media"))


def test_balatro_baselines_play_the_runs_evaluation_seeds(compose_cfg, tmp_path, monkeypatch):
    """Without tracking: the report draws and lists the random and heuristic baselines,
    computed on the run's own evaluation seeds, then cached; the run's episodes are in
    eval/episodes.csv."""
    from pipeline import run as pipeline_run
    from pipeline.agents.baselines import HeuristicAgent
    from pipeline.callbacks import report

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(report, "_MEMORY", {})
    overrides = ("debug=smoke", "agent=random", "tracking=none", "run.progress=false",
                 "run.total_steps=200", "run.eval_episodes=5", "callbacks=[report]")
    pipeline_run.main(compose_cfg(*overrides))
    text = _report_of_last_run(tmp_path)
    assert "## Baselines" in text and "seeds 10000..10004" in text
    assert "| **this run (random)** |" in text and "## Registered models" not in text
    heuristic_line = next(line for line in text.splitlines() if line.startswith("| heuristic |"))
    assert "computed in" in heuristic_line and "| 5 |" in heuristic_line

    # The same numbers as the heuristic playing those seeds through run.evaluate.
    env = pipeline_run.instantiate_component(compose_cfg(*overrides).env, "env")
    agent = HeuristicAgent(env.observation_space, env.action_space)
    expected = pipeline_run.evaluate(agent, env, 5, 10000)["eval/ep_return"]
    assert f"| heuristic | {expected:.4g} | 1 |" in heuristic_line  # clears every Small Blind
    [csv_path] = tmp_path.glob("outputs/runs/*/*/eval/episodes.csv")
    assert csv_path.read_text().startswith("episode,seed,return,length,rounds,won,score,cost_usd")

    # A second run (a fresh process's memory is empty): read from the disk cache.
    monkeypatch.setattr(report, "_MEMORY", {})
    pipeline_run.main(compose_cfg(*overrides, "+callbacks.report.known.balatro.random=0.125"))
    text = _report_of_last_run(tmp_path)
    assert "| heuristic |" in text and "| cached |" in text
    assert "| random | 0.125 | - | - | - | - | given (callbacks.report.known) |" in text
    assert list(tmp_path.glob("outputs/cache/baselines/*.json"))

    pipeline_run.main(compose_cfg(*overrides, "callbacks.report.baselines=none"))
    assert "## Baselines" not in _report_of_last_run(tmp_path)


def test_a_baseline_over_its_time_limit_is_left_out(compose_cfg, monkeypatch):
    from pipeline.callbacks import report
    from pipeline.callbacks.report import compute_baseline

    monkeypatch.setattr(report, "_MEMORY", {})
    env_cfg = compose_cfg("env.mode=run").env
    assert compute_baseline(env_cfg, "heuristic", 3, 10000, max_s=1e-6) is None
    found = compute_baseline(env_cfg, "random", 3, 10000, max_s=60)
    assert found.episodes == 3 and found.rounds == 1.0 and found.source in ("computed", "cached")


@pytest.mark.slow
def test_dqn_report_lists_baselines_and_the_registered_models(compose_cfg, store, tmp_path,
                                                              monkeypatch):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg("debug=smoke", "agent=dqn", "run.progress=false", "run.eval_episodes=3",
                      "callbacks.media.every_n_episodes=100000", "callbacks.best_model.champion_episodes=2",
                      *store["overrides"])
    assert list(cfg.callbacks).index("report") > list(cfg.callbacks).index("best_model")
    pipeline_run.main(cfg)

    client = MlflowClient(store["uri"])
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    run_id = run.info.run_id
    assert {Path(a.path).name for a in client.list_artifacts(run_id, "report")} == {
        "report.md", "reward_curve.png"}
    assert [a.path for a in client.list_artifacts(run_id, "eval")] == ["eval/episodes.csv"]
    text = Path(client.download_artifacts(run_id, "report/report.md", str(tmp_path / "dl"))).read_text()
    assert "| random |" in text and "| heuristic |" in text and "| **this run (dqn)** |" in text
    models = client.search_model_versions(f"run_id = '{run_id}'")
    assert {m.name for m in models} == {"balatro_dqn_best_episode", "balatro_dqn_best_average"}
    champion = client.get_model_version_by_alias("balatro_dqn_best_episode", "champion")
    line = next(l for l in text.splitlines()
                if l.startswith(f"| balatro_dqn_best_episode | {champion.version} |"))
    assert "@best, @champion" in line and "eval/ep_return" in line
    assert "`models:/balatro_dqn_best_episode@champion`" in line
    assert f"`models:/balatro_dqn_best_episode/{champion.version}`" in line
    for m in models:  # every version this run registered is listed
        assert f"| {m.name} | {m.version} |" in text
    assert "`eval/episodes.csv`" in text and "`replays/episode_0.npz`" in text
