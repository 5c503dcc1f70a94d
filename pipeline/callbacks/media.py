"""Episode GIFs and the final screen, written under <output_dir>/media and logged as artifacts.

Works with any env whose `render()` returns an RGB array (Game Boy, Balatro); Pillow is
imported only when a file is written.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pipeline.agents.base import Transition
from pipeline.callbacks.base import Callback, EpisodeSummary, RunState

log = logging.getLogger(__name__)


class MediaCallback(Callback):
    """Record every `every_k_steps`-th frame of one episode in `every_n_episodes` as a GIF."""

    def __init__(
        self,
        every_n_episodes: int = 10,
        every_k_steps: int = 2,
        downscale: int = 1,
        fps: float = 15.0,
        max_frames: int = 500,
        final_screen: bool = True,
        artifact_path: str = "media",
    ) -> None:
        for name, value in (("every_n_episodes", every_n_episodes), ("every_k_steps", every_k_steps),
                            ("downscale", downscale), ("max_frames", max_frames)):
            if int(value) < 1:
                raise ValueError(f"callbacks.media.{name}: {value} must be at least 1")
        if float(fps) <= 0:
            raise ValueError(f"callbacks.media.fps: {fps} must be positive")
        self.every_n_episodes = int(every_n_episodes)
        self.every_k_steps = int(every_k_steps)
        self.downscale = int(downscale)
        self.fps = float(fps)
        self.max_frames = int(max_frames)
        self.final_screen = bool(final_screen)
        self.artifact_path = artifact_path
        self.frames: list[np.ndarray] = []
        self.recording = False
        self.episode_step = 0
        self.episode_index = 0
        self._warned = False

    # ------------------------------------------------------------------ hooks

    def on_run_start(self, state: RunState) -> None:
        self._start_episode(state.episode, state)

    def on_step(self, state: RunState, transition: Transition) -> bool:
        """Capture steps 1, 1 + k, 1 + 2k, ... of a recorded episode (the screen after the step;
        when the loop has already reset the env, the new episode's first screen)."""
        if self.recording:
            if self.episode_step % self.every_k_steps == 0:
                self._capture(state)
            self.episode_step += 1
        return True

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        # The loop may call on_step for the last transition after this hook (and after the
        # reset), so the final screen is taken here unless on_step already has it.
        if self.recording:
            final = self._render(state)
            if final is not None and not (self.frames and np.array_equal(self.frames[-1], final)):
                if len(self.frames) >= self.max_frames:
                    self.frames[-1] = final
                else:
                    self.frames.append(final)
        if self.recording and self.frames:
            self._write_gif(state, f"episode_{episode.index:06d}.gif")
        self._start_episode(episode.index + 1, state)
        return True

    def on_run_end(self, state: RunState) -> None:
        if self.recording and self.frames:  # a run that stops mid-episode still shows it
            self._write_gif(state, f"episode_{self.episode_index:06d}_partial.gif")
        self.frames = []
        self.recording = False
        if self.final_screen:
            frame = self._render(state)
            if frame is not None:
                from PIL import Image

                path = self._media_dir(state) / "final_screen.png"
                Image.fromarray(frame).save(path)
                self._log(state, path)

    # ------------------------------------------------------------------ internals

    def _start_episode(self, index: int, state: RunState) -> None:
        self.episode_index = index
        self.recording = index % self.every_n_episodes == 0
        self.episode_step = 0
        self.frames = []

    def _render(self, state: RunState) -> Optional[np.ndarray]:
        frame: Any = state.env.render() if state.env is not None else None
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] in (3, 4)):
            if not self._warned:
                log.warning("MediaCallback: env.render() gave %s, not an RGB array; no media recorded "
                            "(set env.render_mode=rgb_array)", type(frame).__name__)
                self._warned = True
            return None
        return np.ascontiguousarray(frame[:: self.downscale, :: self.downscale, :3], dtype=np.uint8)

    def _capture(self, state: RunState) -> None:
        if len(self.frames) >= self.max_frames:
            return
        frame = self._render(state)
        if frame is None:
            self.recording = False
        else:
            self.frames.append(frame)

    def _media_dir(self, state: RunState) -> Path:
        path = Path(state.output_dir) / "media"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _write_gif(self, state: RunState, name: str) -> None:
        from PIL import Image

        images = [Image.fromarray(f) for f in self.frames]
        path = self._media_dir(state) / name
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / self.fps),
                       loop=0, optimize=False)
        self.frames = []
        self._log(state, path)

    def _log(self, state: RunState, path: Path) -> None:
        if state.tracker is not None:
            state.tracker.log_artifact(path, self.artifact_path)
