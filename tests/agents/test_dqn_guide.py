"""agent.guide: a rule-based player that plays a fraction of the DQN's training episodes."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.agents.base import Transition
from pipeline.agents.baselines import HeuristicAgent
from pipeline.agents.dqn import DQNAgent
from pipeline.envs.balatro import BalatroEnv
from tests.conftest import run_pipeline
from tests.toy_env import ToyEnv

SMALL = dict(network="mlp", hidden_sizes=[16], learning_starts=10**9)


def _agent(env, **kwargs) -> DQNAgent:
    return DQNAgent(env.observation_space, env.action_space, seed=5, env=env, guide="heuristic",
                    **{**SMALL, **kwargs})


def test_a_guided_episode_is_the_heuristic_s_play_from_start_to_end():
    env = BalatroEnv(mode="run")
    agent = _agent(env, guide_episodes=1.0)
    heuristic = HeuristicAgent(env.observation_space, env.action_space, seed=0)
    obs, info = env.reset(seed=7)
    for length in range(1, 3000):
        action = agent.act(obs, info, explore=True)
        assert action == heuristic.act(obs, info) and agent.guided is True
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info["action_mask"], info))
        obs = nxt
        if term or trunc:
            break
    assert term and length > 30                      # a whole run, not a blind
    assert agent.last_episode_guided and agent.guided is None
    assert len(agent.buffer) == length               # the guide's play is in the replay buffer


def test_the_guide_plays_about_the_asked_fraction_and_never_at_evaluation():
    env = BalatroEnv(mode="run")
    agent = _agent(env, guide_episodes=0.3)
    obs, info = env.reset(seed=0)
    assert agent.act(obs, info, explore=False) >= 0 and agent.guided is None   # greedy: no guide
    guided = []
    for _ in range(400):   # 400 one-step episodes
        action = agent.act(obs, info, explore=True)
        agent.observe(Transition(obs, action, 0.0, obs, True, False, info["action_mask"], info))
        guided.append(agent.last_episode_guided)
    assert 0.22 < np.mean(guided) < 0.38
    never = _agent(env, guide_episodes=0.0)
    for _ in range(50):
        never.act(obs, info, explore=True)
        never.observe(Transition(obs, 0, 0.0, obs, True, False, info["action_mask"], info))
        assert never.last_episode_guided is False


def test_whether_the_episode_in_progress_is_guided_survives_a_checkpoint():
    env = BalatroEnv(mode="run")
    agent = _agent(env, guide_episodes=0.5)
    obs, info = env.reset(seed=0)
    while not agent.guided:   # start episodes until one is the guide's
        agent.guided = None
        agent.act(obs, info, explore=True)
    resumed = _agent(env, guide_episodes=0.5)
    resumed.load_state_dict(agent.state_dict())
    assert resumed.guided is True
    old = agent.state_dict()
    del old["guided"]            # a checkpoint from before agent.guide
    resumed.load_state_dict(old)
    assert resumed.guided is None


def test_the_heuristic_guide_needs_balatro():
    env = ToyEnv()
    with pytest.raises(ValueError, match=r"^agent.guide: heuristic plays Balatro only"):
        DQNAgent(env.observation_space, env.action_space, guide="heuristic", hidden_sizes=[8])
    with pytest.raises(ValueError, match=r"^agent.guide_episodes: 2"):
        DQNAgent(env.observation_space, env.action_space, guide_episodes=2, hidden_sizes=[8])


@pytest.mark.slow
def test_guided_episodes_are_logged_apart_from_the_agent_s_own(tmp_path, store):
    result = run_pipeline(
        "debug=smoke", "env.mode=run", "agent.network=mlp", "agent.hidden_sizes=[32]",
        "agent.guide=heuristic", "agent.guide_episodes=0.5", "run.total_steps=3000",
        "run.checkpoint_every=0", "run.progress=false", "callbacks=[metrics]",
        *store["overrides"], f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store["uri"])
    [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    assert run.data.params["agent.guide"] == "heuristic"
    guide = client.get_metric_history(run.info.run_id, "guide/ep_return")
    own = client.get_metric_history(run.info.run_id, "rollout/ep_return")
    guide_rounds = client.get_metric_history(run.info.run_id, "guide/round")
    assert guide and own and len(guide_rounds) == len(guide)
    # The heuristic clears blinds; a barely trained DQN mostly does not.
    assert np.mean([m.value for m in guide_rounds]) > 2
    # rollout/ep_return_mean* (and the best-average model) average the agent's episodes only.
    means = client.get_metric_history(run.info.run_id, "rollout/ep_return_mean")
    # (the mean over the last 100 of them, the callback's window)
    assert means and abs(means[-1].value - np.mean([m.value for m in own][-100:])) < 1e-6
