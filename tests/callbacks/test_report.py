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
