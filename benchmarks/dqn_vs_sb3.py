"""Our DQN vs Stable-Baselines3's DQN, side by side, same env and hyperparameters.

    python benchmarks/dqn_vs_sb3.py [--steps 20000] [--env CartPole-v1] [--seed 0]

Both train for the same number of env steps with the same network (64x64 MLP), batch
size, train frequency, buffer, learning start, target update interval, learning rate,
epsilon schedule, Huber loss and gradient clipping, on one torch thread (the fastest
setting on 2 cores: see shared stack notes). Ours runs through the pipeline's own loop
(`pipeline.run.train` with no tracker and no callbacks), so the ratio includes our loop.
Then both are evaluated greedily on the same 10 seeds. Prints steps/s, the ratio and
the final eval returns. SB3's DQN has no action masking, so the env has none: CartPole.
Needs the benchmark extra: pip install -e ".[benchmark]".
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

HP = dict(lr=1e-3, gamma=0.99, batch_size=32, buffer_size=50_000, learning_starts=1_000,
          train_freq=4, target_update_interval=500, eps_start=1.0, eps_end=0.05,
          hidden=[64, 64], max_grad_norm=10.0)
EVAL_SEEDS = range(10_000, 10_010)


def eval_greedy(policy, env_id: str) -> float:
    env = gym.make(env_id)
    returns = []
    for seed in EVAL_SEEDS:
        obs, info = env.reset(seed=seed)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs, info))
            ret += r
            done = term or trunc
        returns.append(ret)
    return float(np.mean(returns))


def run_ours(env_id: str, steps: int, seed: int) -> tuple[float, float]:
    from pipeline.agents.dqn import DQNAgent
    from pipeline.callbacks.base import CallbackList, RunState
    from pipeline.run import Parts, train
    from pipeline.tracking.null import NullTracker

    env = gym.make(env_id)
    agent = DQNAgent(env.observation_space, env.action_space, seed=seed, lr=HP["lr"],
                     gamma=HP["gamma"], batch_size=HP["batch_size"],
                     buffer_size=HP["buffer_size"], learning_starts=HP["learning_starts"],
                     train_freq=HP["train_freq"], target_update_interval=HP["target_update_interval"],
                     eps_start=HP["eps_start"], eps_end=HP["eps_end"],
                     eps_decay_steps=int(0.1 * steps), hidden_sizes=HP["hidden"],
                     double=False, max_grad_norm=HP["max_grad_norm"], device="cpu")
    cfg = OmegaConf.create({"seed": seed, "run": {"total_steps": steps, "eval_every": 0,
                                                  "eval_episodes": 0, "eval_seed": 0}})
    parts = Parts(env, env, agent, NullTracker(), CallbackList([]))
    state = RunState(cfg=cfg, env=env, agent=agent, tracker=parts.tracker, output_dir=None)
    start = time.perf_counter()
    train(cfg, parts, state)
    sps = steps / (time.perf_counter() - start)
    return sps, eval_greedy(lambda o, i: agent.act(o, i, explore=False), env_id)


def run_sb3(env_id: str, steps: int, seed: int) -> tuple[float, float]:
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", gym.make(env_id), learning_rate=HP["lr"], gamma=HP["gamma"],
                batch_size=HP["batch_size"], buffer_size=HP["buffer_size"],
                learning_starts=HP["learning_starts"], train_freq=HP["train_freq"],
                target_update_interval=HP["target_update_interval"],
                exploration_initial_eps=HP["eps_start"], exploration_final_eps=HP["eps_end"],
                exploration_fraction=0.1, max_grad_norm=HP["max_grad_norm"],
                policy_kwargs=dict(net_arch=HP["hidden"]), seed=seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    sps = steps / (time.perf_counter() - start)
    return sps, eval_greedy(lambda o, i: int(model.predict(o, deterministic=True)[0]), env_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sb3_sps, sb3_ret = run_sb3(args.env, args.steps, args.seed)
    our_sps, our_ret = run_ours(args.env, args.steps, args.seed)
    print(f"env {args.env}, {args.steps} steps, seed {args.seed}, 1 torch thread")
    print(f"{'':12}{'steps/s':>10}{'eval return':>14}")
    print(f"{'SB3 DQN':12}{sb3_sps:>10,.0f}{sb3_ret:>14.1f}")
    print(f"{'ours':12}{our_sps:>10,.0f}{our_ret:>14.1f}")
    print(f"speed ratio ours/SB3: {our_sps / sb3_sps:.2f}x (goal >= 2.0x at equal or better return)")


if __name__ == "__main__":
    main()
