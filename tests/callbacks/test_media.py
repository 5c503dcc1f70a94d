"""MediaCallback with a real GameBoyEnv (generated ROM) and a tracker that records its calls."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.agents.base import Transition
from pipeline.callbacks.base import EpisodeSummary, RunState
from pipeline.callbacks.media import MediaCallback
from pipeline.envs.gameboy import GameBoyEnv
from tests import roms

RIGHT, DOWN = 2, 0


class RecordingTracker:
    """Only what MediaCallback uses: log_artifact."""

    def __init__(self) -> None:
        self.artifacts: list[tuple[Path, str | None]] = []

    def log_artifact(self, path, artifact_path=None) -> None:
        assert Path(path).is_file()
        self.artifacts.append((Path(path), artifact_path))


@pytest.fixture(scope="module")
def rom(tmp_path_factory) -> Path:
    return roms.build_rom(tmp_path_factory.mktemp("rom") / "test.gb")


def run(env, callback, state, episodes: int, stop_after: int | None = None, order: str = "step_first") -> None:
    """A minimal run loop calling the hooks in either order a loop may use at an episode's end:
    "step_first": on_step, then on_episode_end, then reset; "end_first" (pipeline/run.py):
    on_episode_end, reset, then on_step for the last transition."""
    callback.on_run_start(state)
    obs, info = env.reset(seed=state.episode)
    ret, length = 0.0, 0
    while state.episode < episodes:
        action = RIGHT if length % 2 == 0 else DOWN  # the picture scrolls on every step
        next_obs, reward, terminated, truncated, info = env.step(action)
        transition = Transition(obs, action, reward, next_obs, terminated, truncated, info["action_mask"], info)
        state.step += 1
        obs, ret, length = next_obs, ret + reward, length + 1
        done = terminated or truncated
        if order == "step_first":
            callback.on_step(state, transition)
        if done:
            callback.on_episode_end(state, EpisodeSummary(state.episode, ret, length, info))
            state.episode += 1
            obs, info = env.reset(seed=state.episode)
            ret, length = 0.0, 0
        if order == "end_first":
            callback.on_step(state, transition)
        if stop_after is not None and state.step >= stop_after:
            break
    callback.on_run_end(state)


def gif_frames(path: Path) -> list[np.ndarray]:
    gif = Image.open(path)
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    return frames


@pytest.mark.parametrize("order", ["step_first", "end_first"])
def test_records_every_nth_episode_as_gif_and_final_screen(rom, tmp_path, order):
    env = GameBoyEnv(str(rom), max_steps=6)
    tracker = RecordingTracker()
    state = RunState(cfg=None, env=env, agent=None, tracker=tracker, output_dir=tmp_path)
    callback = MediaCallback(every_n_episodes=2, every_k_steps=2, downscale=2, fps=10)
    run(env, callback, state, episodes=3, order=order)
    env.close()

    names = [p.name for p, _ in tracker.artifacts]
    assert names == ["episode_000000.gif", "episode_000002.gif", "final_screen.png"]
    assert all(folder == "media" for _, folder in tracker.artifacts)
    assert all(p.parent == tmp_path / "media" for p, _ in tracker.artifacts)

    gif = Image.open(tmp_path / "media" / "episode_000000.gif")
    assert gif.size == (80, 72) and gif.info["duration"] == 100 and gif.info["loop"] == 0
    for name in names[:2]:
        # every other step plus the episode's last screen: 4 frames, each different from the last
        frames = gif_frames(tmp_path / "media" / name)
        assert len(frames) == 4
        assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))

    final = Image.open(tmp_path / "media" / "final_screen.png")
    assert final.size == (80, 72)


def test_run_ending_mid_episode_still_writes_the_recording(rom, tmp_path):
    env = GameBoyEnv(str(rom), max_steps=50)
    tracker = RecordingTracker()
    state = RunState(cfg=None, env=env, agent=None, tracker=tracker, output_dir=tmp_path)
    callback = MediaCallback(every_n_episodes=1, every_k_steps=1, max_frames=4, final_screen=False)
    run(env, callback, state, episodes=1, stop_after=9)
    env.close()
    assert [p.name for p, _ in tracker.artifacts] == ["episode_000000_partial.gif"]
    assert Image.open(tracker.artifacts[0][0]).n_frames == 4  # capped by max_frames


def test_env_without_rgb_render_records_nothing(rom, tmp_path, caplog):
    env = GameBoyEnv(str(rom), max_steps=3, render_mode=None)
    tracker = RecordingTracker()
    state = RunState(cfg=None, env=env, agent=None, tracker=tracker, output_dir=tmp_path)
    run(env, MediaCallback(every_n_episodes=1), state, episodes=2)
    env.close()
    assert tracker.artifacts == []
    assert "not an RGB array" in caplog.text


def test_invalid_settings_name_the_key():
    with pytest.raises(ValueError, match=r"^callbacks\.media\.every_n_episodes: 0 must be at least 1$"):
        MediaCallback(every_n_episodes=0)


def test_yaml_targets_the_callback():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = Path(__file__).resolve().parents[2] / "conf" / "callbacks" / "media.yaml"
    cfg = OmegaConf.load(path)
    assert path.read_text().startswith("# Episode GIFs and the final screen as MLflow artifacts.\nmedia:\n")
    callback = instantiate(cfg.media)
    assert isinstance(callback, MediaCallback) and callback.every_n_episodes == 500
