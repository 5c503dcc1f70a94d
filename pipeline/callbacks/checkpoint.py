"""Full-state checkpoints, written atomically, loaded without running code from the file.

A checkpoint holds the agent (networks, optimizer, replay buffer, RNGs, counters), the
env's state where it can save one, the episode in progress, the loop counters and the
tracking run id, so `run.resume=` can continue a killed run where it stopped.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.agents.base import Transition
from pipeline.callbacks.base import Callback, RunState
from pipeline.config import ConfigError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LATEST = "latest.pt"


class CheckpointCallback(Callback):
    """Saves every run.checkpoint_every steps and at the end of the run; an evaluation-only
    run (run.total_steps=0) saves nothing: its agent is the one it was loaded from, and a
    Balatro full-run checkpoint with its replay buffer is about 0.5 GB."""

    def __init__(self, upload: bool = True) -> None:
        self.upload = upload
        self._every = 0
        self._trains = True

    def on_run_start(self, state: RunState) -> None:
        self._every = int(state.cfg.run.checkpoint_every)
        self._trains = int(state.cfg.run.total_steps) > 0
        if not self._trains:
            log.info("CheckpointCallback: run.total_steps=0 (an evaluation): no checkpoint")

    def on_step(self, state: RunState, transition: Transition) -> bool:
        every = self._every
        if every and state.step % every == 0:
            self.save(state)
        return True

    def on_run_end(self, state: RunState) -> None:
        if self._trains:
            self.save(state)

    def save(self, state: RunState) -> Path:
        path = save_checkpoint(state.output_dir / "checkpoints" / LATEST, snapshot(state))
        if self.upload:
            state.tracker.log_artifact(path, "checkpoints")
        return path


def snapshot(state: RunState) -> dict[str, Any]:
    """Everything needed to continue the run, as tensors and plain Python values."""
    env = state.env.unwrapped
    mask = state.info.get("action_mask")
    return {
        "format": FORMAT_VERSION,
        "step": state.step,
        "episode": state.episode,
        "run_id": state.tracker.run_id,
        "agent": state.agent.state_dict(),
        "env": env.state_dict() if hasattr(env, "state_dict") else None,
        "obs": torch.as_tensor(np.asarray(state.obs)),
        "action_mask": None if mask is None else torch.as_tensor(np.asarray(mask)),
        "episode_return": float(state.episode_return),
        "episode_length": int(state.episode_length),
        "returns": [float(r) for r in state.returns],
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write to a temp file, fsync, then rename: a kill mid-save leaves the old file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """weights_only=True: only tensors and plain containers are unpickled, never code."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"run.resume: {path} does not exist (expected a checkpoint file "
                          "or an MLflow run id)") from None
    except Exception as ex:  # noqa: BLE001 - corrupt, truncated, or holding code objects
        raise ConfigError(f"run.resume: {path} is not a readable checkpoint "
                          f"({type(ex).__name__}; only tensors and plain values are loaded)"
                          ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ConfigError(f"run.resume: {path} is not a pipeline checkpoint "
                         f"(expected format {FORMAT_VERSION})")
    return payload


def load_checkpoint_or_run(target: str, tracker: Any) -> dict[str, Any]:
    """A checkpoint file, or, for something that is not a path, that MLflow run's
    checkpoints/latest.pt (when the tracker has a store): run.resume, run.init_from and
    serve.policy all take either."""
    run_id = not Path(target).exists() and "/" not in target
    if run_id and hasattr(tracker, "load_run_checkpoint"):
        return tracker.load_run_checkpoint(target)
    return load_checkpoint(Path(target))
