"""Shared fixtures: config composition, a temporary MLflow store, subprocess runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pipeline.config import register_configs

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
register_configs()


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """compose_cfg("agent=random", ...) -> the config `python -m pipeline` would get."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return _compose


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    """A fresh embedded MLflow store: its URI and the overrides that point a run at it."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return {"uri": uri, "overrides": [f"tracking.uri={uri}",
                                      f"tracking.artifact_dir={tmp_path}/mlartifacts"]}


def start_pipeline(*args: str, cwd: Path) -> subprocess.Popen:
    """`python -m pipeline <args>` started in the background (to be signalled), stderr piped."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_pipeline(*args: str, cwd: Path, module: str = "pipeline", timeout: int = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m pipeline <args>` in a subprocess, as a user would type it."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true",
                **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
