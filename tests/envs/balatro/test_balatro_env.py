"""BalatroEnv as a gymnasium env: checker, spaces, info, determinism, state round trip,
text interface, render and constructor errors."""
from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pipeline.envs  # noqa: F401  (registers pipeline/Balatro-v0)
from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.text import IllegalActionError, TextGame

INFO_KEYS = {"ante", "round", "blind", "target", "score", "money", "hands_left", "discards_left",
             "jokers", "phase", "won", "game", "action_mask"}


def rollout(env: BalatroEnv, seed: int, n: int, policy_seed: int = 0, start=None):
    """Random legal actions for `n` steps (resetting on done); yields every transition."""
    rng = np.random.default_rng(policy_seed)
    obs, info = start if start is not None else env.reset(seed=seed)
    out = []
    for _ in range(n):
        a = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, term, trunc, info = env.step(a)
        out.append((a, obs, reward, term, trunc, info))
        if term or trunc:
            obs, info = env.reset(seed=int(rng.integers(1 << 30)))
    return out


@pytest.mark.parametrize("mode", ["blind", "run"])
def test_check_env(mode):
    env = gym.make("pipeline/Balatro-v0", mode=mode).unwrapped
    env.action_space.seed(0)
    check_env(env)


def test_spaces_and_reset_info():
    env = gym.make("pipeline/Balatro-v0").unwrapped
    assert env.action_space.n == A.N_ACTIONS == 447
    assert A.N_SUBSETS == 218 and A.SUBSETS[0] == (0,) and A.SUBSETS[8] == (0, 1)
    assert A.SUBSETS[36] == (0, 1, 2) and A.SUBSETS[217] == (3, 4, 5, 6, 7)
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32
    assert INFO_KEYS <= set(info)
    assert info["action_mask"].dtype == np.bool_ and info["action_mask"].shape == (447,)
    assert set(info["game"]) == {"ante", "round", "score", "won", "money"}
    assert all(isinstance(v, float) for v in info["game"].values())
    assert (info["ante"], info["round"], info["blind"], info["target"]) == (1, 1, "small", 300)
    assert (info["hands_left"], info["discards_left"], info["money"]) == (4, 4, 4)
    assert info["action_mask"][:436].all() and not info["action_mask"][436:].any()


def test_hand_is_sorted_and_observation_encodes_it():
    env = BalatroEnv()
    env.reset(seed=5)
    hand = env.game.hand
    assert hand == sorted(hand, reverse=True)
    obs, _ = env.current_observation()
    slots = obs[:168].reshape(8, 21)
    for i, card in enumerate(hand):
        assert slots[i, card >> 2] == 1 and slots[i, 13 + (card & 3)] == 1 and slots[i, 17] == 1


def test_play_info_reward_and_last_hand():
    env = BalatroEnv(mode="blind")
    _, info = env.reset(seed=11)
    target = info["target"]
    obs, reward, term, trunc, info = env.step(A.PLAY + A.SUBSET_INDEX[(0,)])
    last = info["last_hand"]
    assert set(last) == {"type", "chips", "mult", "score"}
    assert last["score"] == last["chips"] * last["mult"] == info["score"]
    assert reward == pytest.approx(last["score"] / target)
    _, reward, *_ , info = env.step(A.DISCARD + A.SUBSET_INDEX[(0, 1)])
    assert reward == 0.0 and "last_hand" not in info and info["discards_left"] == 3


def test_beating_a_blind_gives_plus_one_and_blind_mode_terminates():
    env = BalatroEnv(mode="blind")
    env.reset(seed=2)
    env.game.target = 1
    _, reward, term, trunc, info = env.step(A.PLAY)
    assert term and not trunc and info["won"]
    assert reward == pytest.approx(info["last_hand"]["score"] / 1 + 1.0)
    assert not info["action_mask"].any()
    with pytest.raises(IllegalActionError, match="episode is over"):
        env.step(A.PLAY)


def test_progress_reward_counts_chips_up_to_what_the_blind_needed():
    """reward=progress: the same deal as overkill, but a hand's chips count only up to the
    blind's remaining need, so each beaten blind sums to exactly 2 and the return is
    2 x blinds beaten plus the lost blind's progress."""
    from pipeline.agents.baselines import HeuristicAgent

    returns = {}
    for kind in ("overkill", "progress"):
        env = BalatroEnv(mode="run", reward=kind)
        agent = HeuristicAgent(env.observation_space, env.action_space)
        obs, info = env.reset(seed=10003)
        blind_sums, current, total, done = [], 0.0, 0.0, False
        while not done:
            before = (info["ante"], info["blind"], info["phase"])
            obs, reward, term, trunc, info = env.step(agent.act(obs, info))
            current += reward
            total += reward
            done = term or trunc
            if before[2] == "play" and info["phase"] != "play":
                blind_sums.append(current)
                current = 0.0
        returns[kind] = (total, info["round"], blind_sums)
    (over, rounds_o, sums_o), (prog, rounds_p, sums_p) = returns["overkill"], returns["progress"]
    assert rounds_o == rounds_p and len(sums_o) == len(sums_p) > 3     # the same game
    beaten, lost = sums_p[:-1], sums_p[-1]
    assert beaten == pytest.approx([2.0] * len(beaten)) and 0.0 < lost < 1.0
    assert prog == pytest.approx(2.0 * len(beaten) + lost)
    assert all(o >= p - 1e-9 for o, p in zip(sums_o, sums_p)) and over > prog


def test_run_mode_goes_to_shop_then_blind_select():
    env = BalatroEnv(mode="run")
    env.reset(seed=4)
    env.game.target = 1
    _, _, term, _, info = env.step(A.PLAY)
    assert not term and info["phase"] == "shop" and info["blind"] == "big"
    assert info["action_mask"][A.LEAVE]
    _, _, _, _, info = env.step(A.LEAVE)
    assert info["phase"] == "blind_select"
    assert info["action_mask"][A.SELECT] and info["action_mask"][A.SKIP]
    _, _, _, _, info = env.step(A.SKIP)
    assert info["blind"] == "boss" and not info["action_mask"][A.SKIP]
    _, _, _, _, info = env.step(A.SELECT)
    assert info["phase"] == "play" and info["round"] == 2


def test_seeded_determinism():
    a, b = BalatroEnv(), BalatroEnv()
    ra, rb = rollout(a, 7, 300), rollout(b, 7, 300)
    for (xa, oa, rwa, ta, tra, ia), (xb, ob, rwb, tb, trb, ib) in zip(ra, rb):
        assert xa == xb and rwa == rwb and ta == tb and tra == trb
        np.testing.assert_array_equal(oa, ob)
        assert ia["score"] == ib["score"] and ia["money"] == ib["money"]


def _heuristic_steps(env, n):
    from pipeline.agents.baselines import HeuristicAgent
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    obs, info = env.current_observation()
    trace = []
    for _ in range(n):
        a = agent.act(obs, info)
        obs, reward, term, trunc, info = env.step(a)
        trace.append((a, obs.tobytes(), reward, term, info["score"], info["money"], info["phase"]))
        if term or trunc:
            break
    return trace


@pytest.mark.parametrize("mode", ["run", "blind"])
def test_state_dict_round_trip_mid_episode(mode):
    env = BalatroEnv(mode=mode)
    env.reset(seed=21)
    steps = _heuristic_steps(env, 25 if mode == "run" else 1)
    assert not steps[-1][3]
    state = env.state_dict()
    plain = json.loads(json.dumps(state))        # plain Python only: survives JSON
    assert plain == state
    expected = _heuristic_steps(env, 60)
    other = BalatroEnv(mode=mode)
    other.reset(seed=999)
    other.load_state_dict(copy.deepcopy(plain))
    assert _heuristic_steps(other, 60) == expected


def test_state_dict_restores_rng_for_random_events():
    env = BalatroEnv()
    env.reset(seed=8)
    state = env.state_dict()
    first = rollout(env, 0, 80, policy_seed=3, start=env.current_observation())
    env.load_state_dict(state)
    second = rollout(env, 0, 80, policy_seed=3, start=env.current_observation())
    assert [(t[0], t[2], t[3]) for t in first] == [(t[0], t[2], t[3]) for t in second]


def test_text_interface_round_trip():
    env = BalatroEnv()
    assert isinstance(env, TextGame)
    env.reset(seed=1)
    from pipeline.agents.baselines import HeuristicAgent
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    obs, info = env.current_observation()
    seen_phases = set()
    for _ in range(120):
        seen_phases.add(info["phase"])
        text = env.text_view()
        assert "Legal now:" in text and f"Ante {info['ante']}" in text
        for a in np.flatnonzero(info["action_mask"]):
            assert env.parse_action(env.action_to_text(int(a))) == a
        obs, _, term, trunc, info = env.step(agent.act(obs, info))
        if term or trunc:
            break
    assert {"play", "shop", "blind_select"} <= seen_phases


def test_parse_action_is_tolerant_and_explains_errors():
    env = BalatroEnv()
    env.reset(seed=1)
    hand = env.game.hand
    from pipeline.envs.balatro.cards import card_name
    assert env.parse_action("I will PLAY cards 1, 3 and 5.") == A.PLAY + A.SUBSET_INDEX[(0, 2, 4)]
    assert env.parse_action("Discard 2 4") == A.DISCARD + A.SUBSET_INDEX[(1, 3)]
    names = f"play {card_name(hand[0])} {card_name(hand[1])}"
    assert env.parse_action(names) == A.PLAY + A.SUBSET_INDEX[(0, 1)]
    with pytest.raises(IllegalActionError, match="legal now"):
        env.parse_action("buy 1")
    with pytest.raises(IllegalActionError, match="1 to 5"):
        env.parse_action("play 1 2 3 4 5 6")
    with pytest.raises(IllegalActionError, match="could not find a command"):
        env.parse_action("hmm")
    assert "play 1 3 5" in env.describe_actions()


def test_illegal_actions_raise():
    env = BalatroEnv()
    _, info = env.reset(seed=0)
    for a in np.flatnonzero(~info["action_mask"]):
        with pytest.raises(IllegalActionError):
            env.step(int(a))
    with pytest.raises(IllegalActionError, match="outside"):
        env.step(447)
    assert issubclass(IllegalActionError, ValueError)


def test_render_rgb():
    env = gym.make("pipeline/Balatro-v0")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5


@pytest.mark.parametrize("kwargs, message", [
    ({"stake": "pink"}, "env.stake: 'pink' is not a stake (expected one of: white, red, green, black, "
                        "blue, purple, orange, gold)"),
    ({"deck": "plasma"}, "env.deck: 'plasma' is not a deck (expected one of: red, blue, yellow, green)"),
    ({"mode": "tournament"}, "env.mode: 'tournament' is not a mode (expected one of: run, blind)"),
    ({"blind": "huge"}, "env.blind: 'huge' is not a blind (expected one of: small, big, boss)"),
    ({"start_ante": 9}, "env.start_ante: 9 is not an ante"),
    ({"max_steps": 0}, "env.max_steps: 0 is not a step limit"),
    ({"reward": "chips"}, "env.reward: 'chips' is not a reward (expected one of: overkill, progress)"),
])
def test_bad_constructor_args(kwargs, message):
    with pytest.raises(ValueError) as err:
        BalatroEnv(**kwargs)
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        BalatroEnv("run")  # type: ignore[misc]


@pytest.mark.parametrize("stake, small, boss_floor", [
    ("white", 300, 600), ("green", 300, 600), ("purple", 300, 600),
])
def test_stake_targets_ante_1(stake, small, boss_floor):
    env = BalatroEnv(stake=stake)
    _, info = env.reset(seed=0)
    assert info["target"] == small


def test_stake_rows_and_endless_extrapolation():
    assert [B.ante_base(a, B.STAKES.index("white")) for a in range(1, 9)] == \
        [300, 800, 2000, 5000, 11000, 20000, 35000, 50000]
    assert B.ante_base(8, B.STAKES.index("blue")) == 100000
    assert B.ante_base(8, B.STAKES.index("gold")) == 200000
    # get_blind_amount(9): floor(50000 * (1.6 + 0.75^1.2)) = 115404 -> two significant digits
    assert B.ante_base(9, 0) == 110000
    env = BalatroEnv(start_ante=10, endless=True)
    _, info = env.reset(seed=0)
    assert info["ante"] == 10 and info["target"] == B.ante_base(10, 0)


def test_red_stake_small_blind_pays_nothing():
    env = BalatroEnv(stake="red")
    env.reset(seed=0)
    env.game.target, env.game.money = 1, 0
    _, _, _, _, info = env.step(A.PLAY)
    assert info["money"] == 3          # $0 reward + 3 unused hands, no interest


def test_start_ante_and_blind_mode_round():
    env = BalatroEnv(mode="blind", start_ante=3, blind="boss")
    _, info = env.reset(seed=1)
    assert info["ante"] == 3 and info["blind"] == "boss" and info["round"] == 9
    boss = env.game.boss
    assert B.BOSS_MIN_ANTE[boss] <= 3 and not B.BOSS_SHOWDOWN[boss]
    env = BalatroEnv(mode="blind", start_ante=8, blind="boss")
    env.reset(seed=1)
    assert B.BOSS_SHOWDOWN[env.game.boss]


def test_truncation_at_max_steps():
    env = BalatroEnv(mode="run", max_steps=3)
    _, info = env.reset(seed=0)
    truncated = False
    for _ in range(3):
        _, _, term, truncated, info = env.step(A.DISCARD + A.SUBSET_INDEX[(0,)])
    assert truncated and not term


def test_load_state_dict_rejects_another_config():
    state = BalatroEnv(mode="blind").state_dict()
    with pytest.raises(ValueError, match="mode='blind' but this env has mode='run'"):
        BalatroEnv(mode="run").load_state_dict(state)


def test_info_target_is_the_next_blind_while_shopping():
    env = BalatroEnv()
    env.reset(seed=0)
    env.game.target = 1
    _, _, _, _, info = env.step(A.PLAY)
    assert info["phase"] == "shop" and info["blind"] == "big" and info["target"] == 450


def test_action_space_sample_is_legal():
    env = BalatroEnv()
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(200):
        a = env.action_space.sample()
        assert info["action_mask"][a]
        _, _, term, trunc, info = env.step(a)
        if term or trunc:
            _, info = env.reset()
