"""Steps per second of BalatroEnv with uniformly random legal actions, on one core.

    python benchmarks/balatro_sps.py [--steps 200000] [--mode run|blind]

The loop is what a rollout worker does: pick an action from info["action_mask"], step,
reset when the episode ends. The figure includes picking the action.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from pipeline.envs.balatro import BalatroEnv


def measure(mode: str, steps: int, seed: int = 0) -> tuple[float, int]:
    env = BalatroEnv(mode=mode)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    episodes = 0
    start = time.perf_counter()
    for _ in range(steps):
        legal = np.flatnonzero(info["action_mask"])
        action = int(legal[int(rng.random() * len(legal))])
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            episodes += 1
            obs, info = env.reset()
    return steps / (time.perf_counter() - start), episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--mode", choices=("run", "blind"), default="run")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    measure(args.mode, 2_000)                                             # warm up
    sps, episodes = measure(args.mode, args.steps)
    print(f"BalatroEnv mode={args.mode}: {sps:,.0f} steps/s "
          f"({args.steps:,} random legal steps, {episodes:,} episodes, one core)")


if __name__ == "__main__":
    main()
