"""Bit-exact replays of the last evaluation's episodes, as MLflow artifacts under replays/.

The envs are deterministic under a seed, so an episode is its seed and its actions. For
each episode of the run's last evaluation this writes replays/episode_<n>.npz (seed,
actions, rewards, final info["game"]) and once replays/env.yaml (the resolved env config);
`python -m pipeline.replay run_id=<id> episode=<n>` plays it back and checks it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from pipeline.callbacks.base import Callback, RunState

log = logging.getLogger(__name__)

RECORDER_KEY = "eval_recorder"  # the state.extras entry pipeline.run.train fills


def save_episode(path: Path, episode: dict[str, Any]) -> Path:
    """One recorded episode as .npz: seed, actions (int16/int32), rewards (float64), game."""
    actions = np.asarray(episode["actions"], dtype=np.int64)
    small = actions.size == 0 or (actions.min() >= -2**15 and actions.max() < 2**15)
    game = {k: float(v) for k, v in episode.get("game", {}).items()}
    rewards = np.asarray(episode["rewards"], dtype=np.float64)
    np.savez(path, seed=np.int64(episode["seed"]),
             actions=actions.astype(np.int16 if small else np.int32), rewards=rewards,
             ret=np.float64(rewards.sum()),
             score=np.float64(game.get("score", rewards.sum())),
             game=np.array(json.dumps(game, sort_keys=True)))
    return path


def load_episode(path: Path) -> dict[str, Any]:
    with np.load(path) as data:
        return {"seed": int(data["seed"]), "actions": data["actions"].astype(np.int64),
                "rewards": data["rewards"].astype(np.float64), "ret": float(data["ret"]),
                "score": float(data["score"]), "game": json.loads(str(data["game"]))}


class ReplayCallback(Callback):
    """Record the evaluation episodes (through pipeline.run's recorder hook); at run end,
    write and log the last evaluation's episodes."""

    def __init__(self, artifact_path: str = "replays", max_episodes: int = 100) -> None:
        if int(max_episodes) < 1:
            raise ValueError(f"callbacks.replay.max_episodes: {max_episodes} must be at least 1")
        self.artifact_path = artifact_path
        self.max_episodes = int(max_episodes)

    def on_run_start(self, state: RunState) -> None:
        state.extras.setdefault(RECORDER_KEY, [])

    def on_run_end(self, state: RunState) -> None:
        episodes = state.extras.get(RECORDER_KEY) or []
        if not episodes:
            log.info("ReplayCallback: no evaluation episodes recorded; no replays written")
            return
        folder = Path(state.output_dir) / self.artifact_path
        folder.mkdir(parents=True, exist_ok=True)
        env_yaml = folder / "env.yaml"
        env_yaml.write_text(OmegaConf.to_yaml(state.cfg.env, resolve=True))
        paths = [env_yaml] + [save_episode(folder / f"episode_{n}.npz", ep)
                              for n, ep in enumerate(episodes[: self.max_episodes])]
        state.extras["replay_artifacts"] = [f"{self.artifact_path}/{p.name}" for p in paths]
        if state.tracker is not None:
            for path in paths:
                state.tracker.log_artifact(path, self.artifact_path)
