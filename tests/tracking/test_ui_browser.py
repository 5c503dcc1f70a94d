"""The MLflow UI on a store with a finished sweep, in headless Chromium: the experiment
page lists the sweep's parent run and the parent's page lists its child runs. Screenshots
go to outputs/ui/ for a human to look at."""
from __future__ import annotations

import re

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, run_pipeline
from tests.tracking.servers import chromium, mlflow_server

SCREENSHOTS = REPO / "outputs" / "ui"


def _text(dom: str) -> str:
    """What the page shows: the DOM without scripts, styles and tags."""
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.mark.server
def test_ui_shows_the_sweep_parent_and_its_children(tmp_path, store):
    result = run_pipeline("-m", "agent=random", "seed=0,1,2", "debug=smoke",
                          "run.total_steps=200", "run.progress=false", "callbacks=metrics",
                          *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store["uri"])
    exp = client.get_experiment_by_name("balatro")
    [parent] = client.search_runs([exp.experiment_id], "tags.sweep_role = 'parent'")
    children = {f"seed={s}" for s in range(3)}

    with mlflow_server(store["uri"], tmp_path / "served") as url:
        runs_page = f"{url}/#/experiments/{exp.experiment_id}/runs"
        parent_page = f"{runs_page}/{parent.info.run_id}"
        listing = _text(chromium(runs_page, "--dump-dom"))
        assert parent.info.run_name in listing, listing[:2000]
        assert "4 matching runs" in listing, listing[:2000]  # the parent and 3 nested children
        details = _text(chromium(parent_page, "--dump-dom"))
        assert "Child runs" in details, details[:2000]
        shown = details.split("Child runs", 1)[1][:500]
        assert all(name in shown for name in children), shown
        assert "sweep/best_objective" in details

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name, page in (("sweep_runs.png", runs_page), ("sweep_parent.png", parent_page)):
            chromium(page, f"--screenshot={SCREENSHOTS / name}", "--window-size=1400,1000")
            assert (SCREENSHOTS / name).stat().st_size > 10_000
