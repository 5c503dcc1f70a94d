"""DQN math as pure functions, the replay buffer, and a learning test on the toy env."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.agents.base import Transition
from pipeline.agents.dqn import (DQNAgent, linear_epsilon, masked_argmax, masked_max,
                                 resolve_device, td_target)
from pipeline.agents.replay import ReplayBuffer
from pipeline.run import evaluate
from tests.toy_env import ToyEnv


def test_linear_epsilon_endpoints_and_midpoint():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(5, 1.0, 0.1, 0) == 0.1


def test_masked_argmax_never_picks_an_illegal_action():
    q = torch.tensor([[5.0, 1.0, 3.0], [0.0, 9.0, -1.0]])
    mask = torch.tensor([[False, True, True], [True, False, True]])
    assert masked_argmax(q, mask).tolist() == [2, 0]
    assert masked_argmax(q, None).tolist() == [0, 1]


def test_masked_max_is_zero_without_legal_actions():
    q = torch.tensor([[5.0, 1.0], [2.0, 7.0]])
    mask = torch.tensor([[False, True], [False, False]])
    assert masked_max(q, mask).tolist() == [1.0, 0.0]


def test_td_target_plain_double_and_terminal():
    rewards = torch.tensor([1.0, 1.0, 1.0])
    dones = torch.tensor([0.0, 0.0, 1.0])
    discounts = torch.tensor([0.9, 0.81, 0.9])
    next_target = torch.tensor([[2.0, 10.0, 4.0]] * 3)
    next_online = torch.tensor([[0.0, 1.0, 5.0]] * 3)
    mask = torch.tensor([[True, False, True]] * 3)
    # Plain DQN: max over legal target values = 4 (10 is masked).
    plain = td_target(rewards, dones, discounts, next_target, mask)
    assert plain.tolist() == pytest.approx([1 + 0.9 * 4, 1 + 0.81 * 4, 1.0])
    # Double DQN: the online argmax (legal) is action 2, evaluated by the target: 4.
    next_online_alt = torch.tensor([[3.0, 9.0, 1.0]] * 3)  # argmax legal = 0 -> target 2
    double = td_target(rewards, dones, discounts, next_target, mask, next_online_alt)
    assert double.tolist() == pytest.approx([1 + 0.9 * 2, 1 + 0.81 * 2, 1.0])
    assert td_target(rewards, dones, discounts, next_target, mask, next_online).tolist() == \
        pytest.approx([1 + 0.9 * 4, 1 + 0.81 * 4, 1.0])


def test_resolve_device_auto_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_replay_buffer_wraps_and_round_trips():
    buf = ReplayBuffer(4, (2,), np.float32, 3)
    for i in range(6):
        buf.add(np.full(2, i), i % 3, float(i), np.full(2, i + 1), i == 5,
                np.array([True, False, True]), 0.9)
    assert len(buf) == 4 and buf.pos == 2
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]
    copy = ReplayBuffer(4, (2,), np.float32, 3)
    copy.load_state_dict(buf.state_dict())
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    a, b = buf.sample(8, rng_a), copy.sample(8, rng_b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _transition(obs, action, reward, next_obs, terminated=False, truncated=False):
    return Transition(obs, action, reward, next_obs, terminated, truncated,
                      np.ones(3, bool), {})


def test_n_step_returns_fold_rewards_and_stop_at_episode_end():
    env = ToyEnv(n_states=2)
    agent = DQNAgent(env.observation_space, env.action_space, n_step=3, gamma=0.5,
                     buffer_size=10, hidden_sizes=[8])
    o = np.zeros(2, np.float32)
    agent.observe(_transition(o, 0, 1.0, o))
    agent.observe(_transition(o, 1, 2.0, o))
    assert len(agent.buffer) == 0
    agent.observe(_transition(o, 2, 4.0, o))
    # 1 + 0.5*2 + 0.25*4 = 3, bootstrapped with 0.5**3
    assert agent.buffer.rewards[0] == pytest.approx(3.0)
    assert agent.buffer.discounts[0] == pytest.approx(0.125)
    agent.observe(_transition(o, 0, 8.0, o, terminated=True))
    # window [2, 4, 8] -> 2 + 2 + 2 = 6; then [4, 8] -> 8; then [8] -> 8, all terminal
    assert agent.buffer.rewards[1:4].tolist() == pytest.approx([6.0, 8.0, 8.0])
    assert agent.buffer.dones[1:4].tolist() == [1.0, 1.0, 1.0]


def test_dqn_acts_only_legally_even_when_exploring():
    env = ToyEnv()
    agent = DQNAgent(env.observation_space, env.action_space, seed=3, hidden_sizes=[16])
    obs, info = env.reset(seed=0)
    actions = {agent.act(obs, info, explore=True) for _ in range(300)}
    actions |= {agent.act(obs, info, explore=False)}
    assert env.n_states not in actions


def test_dqn_learns_the_toy_env_in_seconds():
    torch.set_num_threads(1)
    env, eval_env = ToyEnv(), ToyEnv()
    agent = DQNAgent(env.observation_space, env.action_space, seed=0, lr=3e-3, gamma=0.5,
                     batch_size=32, learning_starts=200, train_freq=1,
                     target_update_interval=200, eps_decay_steps=1500, hidden_sizes=[32])
    before = evaluate(agent, eval_env, 10, 100)["eval/ep_return"]
    obs, info = env.reset(seed=0)
    for step in range(1, 3001):
        action = agent.act(obs, info)
        next_obs, reward, term, trunc, next_info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, term, trunc,
                                 next_info["action_mask"], next_info))
        agent.update(step)
        obs, info = (env.reset() if term or trunc else (next_obs, next_info))
    after = evaluate(agent, eval_env, 10, 100)["eval/ep_return"]
    assert after >= 9.0, (before, after)


def test_state_dict_round_trip_gives_identical_actions_and_updates():
    env = ToyEnv()
    kwargs = dict(seed=1, learning_starts=10, batch_size=8, train_freq=1, hidden_sizes=[16])
    a = DQNAgent(env.observation_space, env.action_space, **kwargs)
    obs, info = env.reset(seed=0)
    for step in range(1, 40):
        action = a.act(obs, info)
        nxt, r, term, trunc, ninfo = env.step(action)
        a.observe(Transition(obs, action, r, nxt, term, trunc, ninfo["action_mask"], ninfo))
        a.update(step)
        obs, info = (env.reset() if term or trunc else (nxt, ninfo))
    b = DQNAgent(env.observation_space, env.action_space, **{**kwargs, "seed": 99})
    b.load_state_dict(a.state_dict())
    assert [a.act(obs, info) for _ in range(20)] == [b.act(obs, info) for _ in range(20)]
    assert a.update(40) == b.update(40)


def _train_toy(agent: DQNAgent, env: ToyEnv, steps: range) -> list[dict[str, float]]:
    obs, info = env.reset(seed=0)
    logs = []
    for step in steps:
        action = agent.act(obs, info)
        nxt, r, term, trunc, ninfo = env.step(action)
        agent.observe(Transition(obs, action, r, nxt, term, trunc, ninfo["action_mask"], ninfo))
        logs.append(agent.update(step))
        obs, info = (env.reset() if term or trunc else (nxt, ninfo))
    return logs


def test_learning_rate_decays_linearly_and_a_resume_continues_it():
    env = ToyEnv()
    kwargs = dict(seed=1, lr=1e-3, lr_end=1e-4, lr_decay_steps=100, learning_starts=10,
                  batch_size=8, train_freq=1, hidden_sizes=[16])
    a = DQNAgent(env.observation_space, env.action_space, **kwargs)
    logs = _train_toy(a, env, range(1, 51))
    assert logs[-1]["train/lr"] == pytest.approx(1e-3 + 0.5 * (1e-4 - 1e-3))
    assert a.optimizer.param_groups[0]["lr"] == pytest.approx(5.5e-4)
    # A fresh agent loaded from the checkpoint uses the scheduled rate, not its own lr.
    b = DQNAgent(env.observation_space, env.action_space, **kwargs)
    b.load_state_dict(a.state_dict())
    assert b.update(150)["train/lr"] == pytest.approx(1e-4)   # after the decay: lr_end
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    # Without lr_end the rate stays constant and is not logged.
    c = DQNAgent(env.observation_space, env.action_space, **{**kwargs, "lr_end": None})
    logs = _train_toy(c, env, range(1, 51))
    assert "train/lr" not in logs[-1] and c.optimizer.param_groups[0]["lr"] == 1e-3


def test_lr_end_without_decay_steps_is_refused():
    env = ToyEnv()
    with pytest.raises(ValueError, match=r"^agent.lr_decay_steps: 0 with agent.lr_end="):
        DQNAgent(env.observation_space, env.action_space, lr_end=1e-5)


@pytest.mark.parametrize("dueling", [False, True])
def test_numpy_acting_path_matches_the_torch_network(dueling):
    env = ToyEnv(n_states=7)
    agent = DQNAgent(env.observation_space, env.action_space, seed=2, dueling=dueling,
                     hidden_sizes=[32, 16], device="cpu")
    obs = np.random.default_rng(0).random((50, 7), dtype=np.float32)
    masks = np.ones((50, 8), bool)
    masks[:, -1] = False
    with torch.no_grad():
        expected = agent.online(torch.as_tensor(obs)).numpy()
    from pipeline.agents.dqn import _numpy_forward
    got = np.stack([_numpy_forward(agent._np_layers, dueling, o) for o in obs])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # The views follow the optimizer's in-place updates.
    with torch.no_grad():
        for p in agent.online.parameters():
            p.add_(0.1)
        expected = agent.online(torch.as_tensor(obs)).numpy()
    got = np.stack([_numpy_forward(agent._np_layers, dueling, o) for o in obs])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    greedy = agent.greedy(obs, masks)
    assert [agent.act(o, {"action_mask": m}, explore=False) for o, m in zip(obs, masks)] == \
        greedy.tolist()
