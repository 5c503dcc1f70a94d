"""The Agent protocol: what the run loop asks of every agent (DQN, LLM, baselines)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(slots=True)
class Transition:
    """One environment step as the agent saw it.

    `next_mask` is the legal-action mask of `next_obs` (all True when the env gives none);
    DQN needs it to take the max over legal actions only in its TD target.
    """

    obs: np.ndarray
    action: int
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    next_mask: np.ndarray
    info: dict[str, Any]


@runtime_checkable
class Agent(Protocol):
    """Every agent is built as `Agent(observation_space=..., action_space=..., env=..., **cfg)`.

    `env` is the unwrapped env; most agents ignore it, LLM agents use its text interface
    (`describe_actions()`, `parse_action(text)`). An agent that reads its env keeps it in
    the attribute `env`: the loop points that attribute at whichever env is being played
    (the training env, or the evaluation env during `run.evaluate`, set again before each
    evaluation episode so the agent can start it afresh).
    """

    def act(self, obs: np.ndarray, info: dict[str, Any], *, explore: bool = True) -> int: ...

    def observe(self, transition: Transition) -> None: ...

    def update(self, step: int) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def legal_actions(info: dict[str, Any], n_actions: int) -> np.ndarray:
    """Indices of the legal actions in `info["action_mask"]` (all actions when absent)."""
    mask = info.get("action_mask")
    if mask is None:
        return np.arange(n_actions)
    return np.flatnonzero(mask)
