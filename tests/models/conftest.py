"""One short DQN run on Balatro (blind mode) shared by the model tests, with its final
pyfunc models registered under aliases."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from tests.conftest import CONF

POLICY = "balatro_dqn_policy"
SESSION = "balatro_dqn_game_session"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`run.main` on debug=smoke (1,200 steps) into a fresh store; the run's `policy` and
    `game_session` models registered as balatro_dqn_policy@test / balatro_dqn_game_session@test."""
    from pipeline.run import main
    from pipeline.tracking import MLflowTracker

    tmp = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[
            "debug=smoke", f"tracking.uri={uri}", f"tracking.artifact_dir={tmp}/mlartifacts",
            "run.progress=false", "~callbacks.media", "callbacks.best_model.champion_episodes=3"])
    cwd = Path.cwd()
    os.chdir(tmp)  # run.main writes outputs/ under the working directory
    try:
        main(cfg)
    finally:
        os.chdir(cwd)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    models = {client.get_logged_model(o.model_id).name: o.model_id
              for o in run.outputs.model_outputs}
    tracker = MLflowTracker(uri=uri)
    tracker.run_id = run.info.run_id
    for name, logged in ((POLICY, "policy"), (SESSION, "game_session")):
        tracker.register_model(name, f"models:/{models[logged]}", aliases=["test"])
    return {"uri": uri, "run_id": run.info.run_id, "models": models, "dir": tmp,
            "client": client, "cfg": cfg}


@pytest.fixture
def tracking_uri(trained_run: dict[str, Any]):
    """mlflow.* calls in a test resolve models:/ URIs against the trained run's store."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(trained_run["uri"]):
        yield trained_run["uri"]
