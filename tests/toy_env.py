"""A tiny env with a known optimum, for learning tests that must finish in seconds.

Each step shows one of `n_states` one-hot states; action (2*s) % n_states pays 1, any
other legal action 0; the last action is always illegal (masked). Episodes last 10 steps,
so the best return is 10 and a uniform random policy gets about 10 / n_states.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class ToyEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, n_states: int = 5, length: int = 10) -> None:
        self.n_states, self.length = n_states, length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n_states,), np.float32)
        self.action_space = gym.spaces.Discrete(n_states + 1)
        self._mask = np.ones(n_states + 1, dtype=bool)
        self._mask[-1] = False
        self._state, self._t = 0, 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_states, dtype=np.float32)
        obs[self._state] = 1.0
        return obs

    def _info(self) -> dict:
        return {"action_mask": self._mask.copy(), "game": {"t": float(self._t)}}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state, self._t = int(self.np_random.integers(self.n_states)), 0
        return self._obs(), self._info()

    def step(self, action):
        if not self._mask[action]:
            raise ValueError(f"action {action} is illegal")
        reward = float(action == (2 * self._state) % self.n_states)
        self._t += 1
        self._state = int(self.np_random.integers(self.n_states))
        return self._obs(), reward, False, self._t >= self.length, self._info()
