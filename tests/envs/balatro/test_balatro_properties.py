"""Property tests (hypothesis): legal actions are accepted, illegal ones rejected without
changing the state, scores never go negative and the 52 cards are always all accounted
for (draw pile + hand + discard pile + played pile)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.agents.baselines import HeuristicAgent
from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro import blinds as B
from pipeline.envs.text import IllegalActionError

# Each step: (follow the heuristic?, which legal action otherwise, which illegal action to try)
STEPS = st.lists(st.tuples(st.booleans(), st.floats(0, 1, exclude_max=True),
                           st.floats(0, 1, exclude_max=True)), min_size=1, max_size=80)


def check_invariants(env: BalatroEnv, obs: np.ndarray, info: dict) -> None:
    game = env.game
    assert game.card_counts() == 52
    in_play = game.deck + game.hand + game.discard_pile + game.played_pile
    assert sorted(in_play) == list(range(52))
    assert game.score >= 0 and info["score"] >= 0
    assert game.hand == sorted(game.hand, reverse=True) and len(game.hand) <= 8
    assert env.observation_space.contains(obs)
    assert info["action_mask"].dtype == np.bool_ and info["action_mask"].shape == (447,)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), mode=st.sampled_from(["run", "blind"]),
       stake=st.sampled_from(list(B.STAKES)), deck=st.sampled_from(list(B.DECK_NAMES)),
       endless=st.booleans(), steps=STEPS)
def test_random_walks_keep_invariants(seed, mode, stake, deck, endless, steps):
    env = BalatroEnv(mode=mode, stake=stake, deck=deck, endless=endless,
                     blind=("small", "big", "boss")[seed % 3],
                     start_ante=1 + seed % (10 if endless else 8))
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    obs, info = env.reset(seed=seed)
    check_invariants(env, obs, info)
    for follow, pick, bad in steps:
        mask = info["action_mask"]
        illegal = np.flatnonzero(~mask)
        if len(illegal):
            a_bad = int(illegal[int(bad * len(illegal))])
            before = env.state_dict()
            with pytest.raises(IllegalActionError):
                env.step(a_bad)
            assert env.state_dict() == before
        legal = np.flatnonzero(mask)
        action = agent.act(obs, info) if follow else int(legal[int(pick * len(legal))])
        assert mask[action]
        obs, reward, term, trunc, info = env.step(action)
        assert reward >= 0
        check_invariants(env, obs, info)
        if term or trunc:
            assert not info["action_mask"].any() or trunc
            break


def test_every_legal_action_is_accepted_along_a_run():
    env = BalatroEnv(mode="run")
    agent = HeuristicAgent(env.observation_space, env.action_space, env=env)
    obs, info = env.reset(seed=12)
    phases = set()
    for step in range(60):
        state = env.state_dict()
        if step % 4 == 0 or info["phase"] != "play":
            phases.add(info["phase"])
            for a in np.flatnonzero(info["action_mask"]):
                env.load_state_dict(state)
                o, r, *_ , i = env.step(int(a))
                assert env.game.card_counts() == 52 and i["score"] >= 0
            env.load_state_dict(state)
        obs, _, term, trunc, info = env.step(agent.act(obs, info))
        if term or trunc:
            break
    assert {"play", "shop", "blind_select"} <= phases
