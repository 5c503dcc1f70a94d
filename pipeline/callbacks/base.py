"""Callbacks: SB3's shape (booleans ANDed by CallbackList) over an explicit RunState."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pipeline.agents.base import Transition


@dataclass
class EpisodeSummary:
    """What the loop knows when an episode ends."""

    index: int  # 0-based episode number over the whole run
    ret: float  # undiscounted return
    length: int  # steps
    info: dict[str, Any]  # the final step's info (game progress lives in info["game"])
    guided: bool = False  # played by the agent's guide (agent.guide), not by the agent


@dataclass
class RunState:
    """Everything a callback may read; the loop owns it and updates the counters."""

    cfg: Any
    env: Any
    agent: Any
    tracker: Any
    output_dir: Path
    step: int = 0  # env steps taken so far in the whole run (also across resumes)
    episode: int = 0  # episodes finished so far
    start_step: int = 0  # step at which this process started (non-zero after a resume)
    start_time: float = 0.0  # time.perf_counter() when this process started the loop
    obs: Any = None  # the observation the agent acts on next
    info: dict[str, Any] = field(default_factory=dict)  # its info (action_mask, game, ...)
    episode_return: float = 0.0  # return of the episode in progress so far
    episode_length: int = 0  # steps of the episode in progress so far
    returns: list[float] = field(default_factory=list)  # every finished episode's return
    extras: dict[str, Any] = field(default_factory=dict)  # callbacks' shared notes
    # The final evaluation's episodes (pipeline.run.episode_row: seed, return, rounds, won,
    # score, cost_usd), set before on_eval of that evaluation; logged as eval/episodes.csv.
    eval_episodes: list[dict[str, Any]] = field(default_factory=list)
    stopped: Optional[str] = None  # why the run ended early: "budget" (run.max_cost_usd)


class Callback:
    """Override what you need; every hook is a no-op by default."""

    def on_run_start(self, state: RunState) -> None:
        pass

    def on_step(self, state: RunState, transition: Transition) -> bool:
        return True

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        return True

    def on_update(self, state: RunState, metrics: dict[str, float]) -> None:
        pass

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        pass

    def on_run_end(self, state: RunState) -> None:
        pass


class CallbackList(Callback):
    """Calls every callback in order; a run continues only while all of them say True."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_run_start(self, state: RunState) -> None:
        for cb in self.callbacks:
            cb.on_run_start(state)

    def on_step(self, state: RunState, transition: Transition) -> bool:
        keep = True
        for cb in self.callbacks:
            keep = cb.on_step(state, transition) and keep
        return keep

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        keep = True
        for cb in self.callbacks:
            keep = cb.on_episode_end(state, episode) and keep
        return keep

    def on_update(self, state: RunState, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_update(state, metrics)

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_eval(state, results)

    def on_run_end(self, state: RunState) -> None:
        for cb in self.callbacks:
            cb.on_run_end(state)
