"""`python -m pipeline env=gameboy agent=dqn ...` end to end on a generated ROM: a run with a GIF lands in MLflow."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests import roms
from tests.conftest import run_pipeline


@pytest.mark.slow
def test_gameboy_dqn_smoke_run_logs_a_gif(tmp_path: Path):
    import mlflow

    rom = roms.build_rom(tmp_path / "homebrew.gb")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_pipeline(
        "env=gameboy", "agent=dqn", f"env.rom_path={rom}", "debug=smoke", f"tracking.uri={uri}",
        f"tracking.artifact_dir={tmp_path}/mlartifacts", "run.progress=false",
        # The end-of-run champion challenge would play 20 more 300-step episodes (~half of
        # this test's time); two still exercise it.
        "callbacks.best_model.champion_episodes=2",
        cwd=tmp_path, timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    media = [a.path for a in client.list_artifacts(runs[0].info.run_id, "media")]
    assert any(p.startswith("media/") and p.endswith(".gif") for p in media), media
    assert "media/final_screen.png" in media
