"""Episode, training, evaluation and throughput metrics, sent to the tracker in batches."""
from __future__ import annotations

import time
from collections import defaultdict

from pipeline.agents.base import Transition
from pipeline.callbacks.base import Callback, EpisodeSummary, RunState


class MetricsCallback(Callback):
    """rollout/* and game/* per episode; train/* averaged and time/sps every run.log_every steps."""

    def __init__(self, window: int = 100) -> None:
        self.window = window
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._last_time = 0.0
        self._last_step = 0
        self._log_every = 1

    def on_run_start(self, state: RunState) -> None:
        self._last_time = time.perf_counter()
        self._last_step = state.step
        self._log_every = int(state.cfg.run.log_every)

    def on_step(self, state: RunState, transition: Transition) -> bool:
        if state.step % self._log_every == 0:
            self._log_window(state)
        return True

    def on_update(self, state: RunState, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self._sums[key] += value
            self._counts[key] += 1

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        metrics = {"rollout/ep_return": episode.ret, "rollout/ep_length": float(episode.length)}
        for key, value in episode.info.get("game", {}).items():
            metrics[f"game/{key}"] = float(value)
        if episode.guided:   # the guide's episodes (agent.guide) under their own names
            metrics = {"guide/" + key.split("/", 1)[1]: value for key, value in metrics.items()}
        episode_metrics = getattr(state.agent, "episode_metrics", None)  # e.g. LLM agents' llm/ep_*
        if episode_metrics is not None:
            metrics.update(episode_metrics())
        state.tracker.log_metrics(metrics, state.step)
        return True

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        state.tracker.log_metrics(results, state.step)

    def on_run_end(self, state: RunState) -> None:
        if state.step != self._last_step:
            self._log_window(state)

    def _log_window(self, state: RunState) -> None:
        now = time.perf_counter()
        metrics = {k: self._sums[k] / self._counts[k] for k in self._sums}
        if now > self._last_time:
            metrics["time/sps"] = (state.step - self._last_step) / (now - self._last_time)
        recent = state.returns[-self.window:]
        if recent:
            metrics["rollout/ep_return_mean"] = sum(recent) / len(recent)
        state.tracker.log_metrics(metrics, state.step)
        self._sums.clear()
        self._counts.clear()
        self._last_time, self._last_step = now, state.step
