"""A preallocated numpy ring buffer of transitions (obs, action, reward, next_obs, done, next legal mask)."""
from __future__ import annotations

from typing import Any

import numpy as np


class ReplayBuffer:
    """Fixed-capacity ring buffer; `add` copies into preallocated arrays, `sample` gathers a batch.

    `done` stores only `terminated` (a truncated episode still bootstraps from next_obs).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype,
                 n_actions: int) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.dones = np.zeros(self.capacity, dtype=np.float32)
        # Discount applied to the bootstrap term: gamma**n for an n-step transition.
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.next_masks = np.zeros((self.capacity, n_actions), dtype=np.bool_)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            done: bool, next_mask: np.ndarray, discount: float) -> None:
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.dones[i] = done
        self.discounts[i] = discount
        self.next_masks[i] = next_mask
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {
            "obs": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_obs": self.next_obs[idx],
            "dones": self.dones[idx],
            "discounts": self.discounts[idx],
            "next_masks": self.next_masks[idx],
        }

    def state_dict(self) -> dict[str, Any]:
        """Only the filled part, so a checkpoint early in a run stays small."""
        n = self.size
        return {
            "pos": self.pos, "size": n,
            **{name: getattr(self, name)[:n].copy() for name in _ARRAYS},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        if n > self.capacity:
            raise ValueError(f"replay buffer: checkpoint holds {n} transitions, "
                             f"capacity is {self.capacity} (agent.buffer_size changed?)")
        for name in _ARRAYS:
            getattr(self, name)[:n] = np.asarray(state[name])
        self.size = n
        self.pos = int(state["pos"]) % self.capacity


_ARRAYS = ("obs", "next_obs", "actions", "rewards", "dones", "discounts", "next_masks")
