"""The Balatro Q-network: its card-subset features against the simulator's own scoring,
single-action scoring against the full forward pass, and how DQN picks and saves it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.agents.balatro_qnet import BalatroQNetwork
from pipeline.agents.baselines import HeuristicAgent, _BalatroView
from pipeline.agents.base import Transition
from pipeline.agents.dqn import DQNAgent, double_td_target, td_target
from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro.jokers import N_JOKERS
from pipeline.envs.balatro.hands import HAND_NAMES, evaluate
from pipeline.models.common import load_network, save_network
from tests.toy_env import ToyEnv

# Rows of the play features (after the 12 hand-type rows), see subset_features.
LOG_SCORE, WINS = 12 + 5, 12 + 4


def _observations(n: int, **env_kwargs) -> tuple[BalatroEnv, list[tuple[np.ndarray, dict]]]:
    env = BalatroEnv(mode="blind", **env_kwargs)
    return env, [env.reset(seed=seed) for seed in range(n)]


def test_play_features_name_the_hand_and_its_score_like_the_simulator():
    # Without jokers the network's chip estimate is exact: hand type and score of every
    # legal play on 60 seeded opening hands agree with the simulator's scoring function.
    net = BalatroQNetwork((556,), 447)
    _, resets = _observations(60)
    seen_types = set()
    for obs, info in resets:
        play, _ = net.subset_features(torch.as_tensor(obs[None]))
        view = _BalatroView(obs, info)
        needed = info["target"] - info["score"]
        for k in np.flatnonzero(info["action_mask"][:A.DISCARD]):
            cards = [view.hand[i] for i in A.SUBSETS[k]]
            hand_type = int(play[:12, 0, k].argmax())
            assert hand_type == evaluate(cards)[0], (cards, HAND_NAMES[hand_type])
            seen_types.add(hand_type)
            score = view.preview(A.SUBSETS[k])
            assert np.expm1(float(play[LOG_SCORE, 0, k]) * 10) == pytest.approx(score, abs=0.5)
            assert float(play[WINS, 0, k]) == float(score >= needed)
    assert len(seen_types) >= 5   # high card to flush at least, not one type by accident


def test_play_scores_follow_the_simulator_with_jokers_levels_and_bosses():
    # Jokers (each of the 27, active or disabled), hand levels, discards left and the
    # bosses that change scoring (The Flint, The Arm) or forbid plays (The Psychic, The
    # Eye, The Mouth): the network's score for every legal play equals the simulator's.
    # States come from heuristic full runs, edited, checked, then restored.
    net = BalatroQNetwork((556,), 447)
    env = BalatroEnv(mode="run")
    agent = HeuristicAgent(env.observation_space, env.action_space, seed=0)
    rng = np.random.default_rng(0)
    # None keeps the run's own boss (debuffs, face-down cards, forced cards included).
    bosses = (None, -1, B.FLINT, B.ARM, B.PSYCHIC, B.EYE, B.MOUTH)
    obs, info = env.reset(seed=0)
    checked, plays, jokers_seen, nonzero = 0, 0, set(), 0
    while checked < 60:
        if info["phase"] == "play" and rng.random() < 0.5:
            saved = env.state_dict()
            g = env.game
            g.jokers = [int(j) for j in rng.choice(N_JOKERS, size=rng.integers(0, 6), replace=False)]
            g.disabled_joker = int(rng.integers(-1, len(g.jokers))) if g.jokers else -1
            g.levels = [int(x) for x in rng.integers(1, 6, size=12)]
            g.discards_left = int(rng.integers(0, 5))
            boss = bosses[checked % len(bosses)]
            if boss is not None:
                g.boss_active, g.debuffed, g.face_down, g.forced = boss, frozenset(), set(), -1
                g.boss = boss if boss >= 0 else g.boss
                g.round_types = [int(rng.integers(0, 6))] if rng.random() < 0.5 else []
            check_obs, check_info = env.current_observation()
            play, _ = net.subset_features(torch.as_tensor(check_obs[None]))
            down = set(np.flatnonzero(check_obs[:168].reshape(8, 21)[:, 18] > 0.5))
            for k in np.flatnonzero(check_info["action_mask"][:A.DISCARD]):
                if down & set(A.SUBSETS[k]):
                    continue   # a face-down card's rank is unknown to any player
                expected = g.preview(A.SUBSETS[k])
                assert int(play[:12, 0, k].argmax()) == expected.hand_type
                got = float(np.expm1(float(play[LOG_SCORE, 0, k]) * 10))
                assert got == pytest.approx(expected.score, rel=1e-4, abs=0.5), (
                    [g.hand[i] for i in A.SUBSETS[k]], g.jokers, g.disabled_joker, boss)
                plays += 1
                nonzero += expected.score > 0
            jokers_seen.update(g.active_jokers())
            env.load_state_dict(saved)
            checked += 1
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info, explore=False))
        if terminated or truncated:
            obs, info = env.reset(seed=checked + 1)
    assert jokers_seen == set(range(N_JOKERS)) and plays > 5000 and nonzero > plays // 2


def test_discard_features_describe_the_kept_cards():
    net = BalatroQNetwork((556,), 447)
    _, resets = _observations(20)
    for obs, _ in resets:
        _, discard = net.subset_features(torch.as_tensor(obs[None]))
        view = _BalatroView(obs, {"target": 1, "score": 0, "hands_left": 4,
                                  "discards_left": 4, "money": 0})
        for k in (0, 7, 40, 150, 217):
            kept = [c for i, c in enumerate(view.hand) if i not in A.SUBSETS[k]]
            suits = [c & 3 for c in kept]
            ranks = [c >> 2 for c in kept]
            assert float(discard[0, 0, k]) * 5 == pytest.approx(len(A.SUBSETS[k]))
            assert float(discard[3, 0, k]) * 8 == pytest.approx(len(kept))
            assert float(discard[4, 0, k]) * 4 == pytest.approx(max(map(ranks.count, ranks)))
            assert float(discard[7, 0, k]) * 8 == pytest.approx(max(map(suits.count, range(4))))


@pytest.mark.parametrize("dueling", [False, True])
def test_q_at_equals_the_full_forward_pass(dueling):
    torch.manual_seed(0)
    net = BalatroQNetwork((556,), 447, hidden_sizes=(32,), dueling=dueling, action_hidden=16)
    _, resets = _observations(8)
    obs = torch.as_tensor(np.stack([o for o, _ in resets]))
    actions = torch.tensor([0, 17, 217, 218, 300, 435, 436, 446])
    full = net(obs).gather(1, actions[:, None]).squeeze(1)
    assert torch.allclose(net.q_at(obs, actions), full, atol=1e-6)
    features = net.subset_features(obs)
    assert torch.allclose(net(obs, features), net(obs))


def test_double_td_target_equals_td_target():
    torch.manual_seed(1)
    q_online, q_target = torch.randn(5, 6), torch.randn(5, 6)
    mask = torch.rand(5, 6) > 0.4
    mask[3] = False                                         # a terminal next state
    rewards, dones, discounts = torch.randn(5), torch.tensor([0., 1., 0., 0., 0.]), torch.full((5,), 0.9)
    expected = td_target(rewards, dones, discounts, q_target, mask, q_online)
    got = double_td_target(rewards, dones, discounts, q_online, mask,
                           lambda best: q_target.gather(1, best[:, None]).squeeze(1))
    assert torch.allclose(got, expected)


def test_dqn_picks_the_balatro_network_for_balatro_and_the_mlp_elsewhere():
    env = BalatroEnv(mode="blind")
    agent = DQNAgent(env.observation_space, env.action_space, env=env, hidden_sizes=[16],
                     action_hidden=8, buffer_size=10)
    assert isinstance(agent.online, BalatroQNetwork) and agent.network == "balatro"
    toy = ToyEnv()
    assert DQNAgent(toy.observation_space, toy.action_space, env=toy, hidden_sizes=[8],
                    buffer_size=10).network == "mlp"
    mlp = DQNAgent(env.observation_space, env.action_space, env=env, network="mlp",
                   hidden_sizes=[8], buffer_size=10)
    assert mlp.network == "mlp"
    with pytest.raises(ValueError, match="network=balatro needs BalatroEnv"):
        DQNAgent(toy.observation_space, toy.action_space, env=toy, network="balatro", buffer_size=10)
    with pytest.raises(ValueError, match="agent.network: 'cnn'"):
        DQNAgent(toy.observation_space, toy.action_space, network="cnn", buffer_size=10)


def test_balatro_dqn_updates_and_its_network_saves_and_loads(tmp_path):
    env = BalatroEnv(mode="blind")
    agent = DQNAgent(env.observation_space, env.action_space, env=env, seed=0, hidden_sizes=[32],
                     action_hidden=16, learning_starts=32, batch_size=16, train_freq=1,
                     buffer_size=500)
    obs, info = env.reset(seed=0)
    metrics = {}
    for step in range(1, 80):
        action = agent.act(obs, info)
        assert info["action_mask"][action]
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info["action_mask"], info))
        metrics = agent.update(step) or metrics
        obs = nxt
        if term or trunc:
            obs, info = env.reset(seed=step)
    assert np.isfinite(metrics["train/loss"]) and agent.updates > 0
    files = save_network(agent.online, tmp_path)
    loaded = load_network(files["weights"], files["spec"])
    assert isinstance(loaded, BalatroQNetwork) and loaded.action_hidden == 16
    x = torch.as_tensor(obs[None])
    assert torch.allclose(loaded(x), agent.online(x))
