"""Baseline agents on Balatro: the heuristic beats uniform random on full runs."""
from __future__ import annotations

import time

import numpy as np

from pipeline.agents.base import Agent, Transition
from pipeline.agents.baselines import HeuristicAgent, RandomAgent
from pipeline.envs.balatro import BalatroEnv

N_RUNS = 30


def play_runs(agent_cls, n_runs: int = N_RUNS) -> tuple[float, float, float]:
    """(mean final round, win rate, seconds) over `n_runs` seeded full runs."""
    env = BalatroEnv(mode="run")
    agent = agent_cls(env.observation_space, env.action_space, seed=0, env=env)
    rounds, wins = [], 0
    start = time.perf_counter()
    for seed in range(n_runs):
        obs, info = env.reset(seed=seed)
        while True:
            obs, _, term, trunc, info = env.step(agent.act(obs, info))
            if term or trunc:
                break
        rounds.append(info["round"])
        wins += bool(info["won"])
    return float(np.mean(rounds)), wins / n_runs, time.perf_counter() - start


def test_heuristic_beats_random_on_full_runs(record_property):
    h_round, h_win, h_secs = play_runs(HeuristicAgent)
    r_round, r_win, _ = play_runs(RandomAgent)
    print(f"\nBalatro full runs x{N_RUNS} (white stake, red deck): heuristic mean round "
          f"{h_round:.2f}, win rate {h_win:.2f} ({h_secs:.1f}s); random mean round {r_round:.2f}, "
          f"win rate {r_win:.2f}")
    record_property("heuristic_mean_round", h_round)
    record_property("heuristic_win_rate", h_win)
    record_property("random_mean_round", r_round)
    record_property("random_win_rate", r_win)
    assert h_round > r_round + 3
    assert h_secs < 30


def test_heuristic_protocol_and_errors():
    env = BalatroEnv()
    agent = HeuristicAgent(env.observation_space, env.action_space, seed=1, env=env)
    assert isinstance(agent, Agent)
    obs, info = env.reset(seed=0)
    action = agent.act(obs, info, explore=False)
    assert info["action_mask"][action]
    agent.observe(Transition(obs, action, 0.0, obs, False, False, info["action_mask"], info))
    assert agent.update(0) == {}
    agent.load_state_dict(agent.state_dict())


def test_heuristic_reads_the_stepped_env_not_its_build_env():
    # The run loop evaluates on a second env: the agent must follow the env it is given
    # observations from, whatever env it was built with.
    build_env, eval_env = BalatroEnv(), BalatroEnv()
    build_env.reset(seed=1)
    agent = HeuristicAgent(build_env.observation_space, build_env.action_space, env=build_env)
    obs, info = eval_env.reset(seed=2)
    for _ in range(200):
        action = agent.act(obs, info)
        assert info["action_mask"][action]
        obs, _, term, trunc, info = eval_env.step(action)
        if term or trunc:
            break
    assert info["round"] >= 3


def test_view_scores_like_the_simulator():
    from pipeline.agents.baselines import _BalatroView
    from pipeline.envs.balatro import actions as A
    env = BalatroEnv()
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    checked = 0
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        for _ in range(150):
            if info["phase"] == "play" and not env.game.face_down:
                view = _BalatroView(obs, info)
                assert view.hand == env.game.hand and view.jokers == env.game.jokers
                assert view.levels == env.game.levels
                for k in range(0, A.N_SUBSETS, 7):
                    if max(A.SUBSETS[k]) < len(env.game.hand):
                        assert view.preview(A.SUBSETS[k]) == env.game.preview(A.SUBSETS[k]).score
                        checked += 1
            obs, _, term, trunc, info = env.step(agent.act(obs, info))
            if term or trunc:
                break
    assert checked > 500


def test_heuristic_plays_the_best_hand_when_it_wins():
    env = BalatroEnv(mode="blind")
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    obs, info = env.reset(seed=4)
    env.game.target = 1
    action = agent.act(obs, info)
    from pipeline.envs.balatro import actions as A
    best = max(env.game.preview(A.SUBSETS[k]).score for k in range(A.N_SUBSETS))
    assert action < A.DISCARD and env.game.preview(A.SUBSETS[action]).score == best


def test_random_agent_unchanged_protocol():
    env = BalatroEnv()
    agent = RandomAgent(env.observation_space, env.action_space, seed=0)
    obs, info = env.reset(seed=0)
    assert info["action_mask"][agent.act(obs, info)]
