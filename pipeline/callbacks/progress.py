"""A rich progress bar: steps, episodes and the recent mean return."""
from __future__ import annotations

from typing import Any

from pipeline.agents.base import Transition
from pipeline.callbacks.base import Callback, EpisodeSummary, RunState

_REFRESH_EVERY = 256  # steps between bar updates (keeps the hot loop cheap)


class ProgressCallback(Callback):
    def __init__(self, window: int = 100) -> None:
        self.window = window
        self._progress: Any = None
        self._task: Any = None

    def on_run_start(self, state: RunState) -> None:
        if not state.cfg.run.progress:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"), transient=False,
        )
        self._task = self._progress.add_task("train", total=state.cfg.run.total_steps,
                                             completed=state.step, stats="")
        self._progress.start()

    def on_step(self, state: RunState, transition: Transition) -> bool:
        if self._progress is not None and state.step % _REFRESH_EVERY == 0:
            self._progress.update(self._task, completed=state.step)
        return True

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        if self._progress is not None:
            recent = state.returns[-self.window:]
            mean = sum(recent) / len(recent) if recent else 0.0
            self._progress.update(self._task, stats=f"episodes {state.episode + 1}  "
                                                    f"mean return {mean:.3f}")
        return True

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        if self._progress is not None and "eval/ep_return" in results:
            self._progress.console.log(
                f"eval at step {state.step}: return {results['eval/ep_return']:.3f}"
                + "".join(f"  {k.removeprefix('eval/')} {v:.3f}" for k, v in results.items()
                          if k not in ("eval/ep_return",)))

    def on_run_end(self, state: RunState) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.step)
            self._progress.stop()
            self._progress = None
