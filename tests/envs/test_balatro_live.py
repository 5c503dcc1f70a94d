"""BalatroLiveEnv against a fake balatrobot (a real HTTP server answering with the simulator):
full episodes with the simulator's encoding, seeds, the protocol's errors, and the encoder
on GameStates the simulator cannot produce."""
from __future__ import annotations

import json
import socket

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pipeline.envs  # noqa: F401  (registers pipeline/BalatroLive-v0)
from pipeline.agents.baselines import HeuristicAgent
from pipeline.cli import one_line_error
from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.env import O_BOSS, O_JOKERS, O_TAGS
from pipeline.envs.balatro_live import (BalatroConnectionError, BalatroLiveEnv, BalatroLiveError,
                                        BalatroProtocolError, BalatroRPCError, GameStateEncoder,
                                        seed_string)
from pipeline.envs.text import IllegalActionError, TextGame
from tests.balatrobot_fake import FakeBalatroBot


@pytest.fixture
def fake():
    with FakeBalatroBot() as server:
        yield server


def simulator_view(fake: FakeBalatroBot, sim: BalatroEnv):
    """What the simulator shows for the fake's game, with the shop as the game shows it
    (a bought card's slot closes up)."""
    state = fake.game.state_dict()
    shop = [slot for slot in state["shop"] if slot[0] != S.SLOT_EMPTY]
    state["shop"] = shop + [[S.SLOT_EMPTY, 0, 0]] * (S.N_SHOP_SLOTS - len(shop))
    sim.game.load_state_dict(state)
    obs, info = sim.current_observation()
    if fake.state_name() == "BLIND_SELECT":  # the game sells jokers only in shop or round
        info["action_mask"][A.SELL:A.REROLL] = False
    return obs, info


def test_full_run_episodes_encode_like_the_simulator(fake):
    env = BalatroLiveEnv(url=fake.url, mode="run")
    sim = BalatroEnv(mode="run")
    agent = HeuristicAgent(env.observation_space, env.action_space)
    rng = np.random.default_rng(0)
    phases, compared, steps = set(), 0, 0
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        done = False
        while not done:
            assert fake.state_name() in ("SELECTING_HAND", "BLIND_SELECT", "SHOP")
            expected_obs, expected_info = simulator_view(fake, sim)
            np.testing.assert_array_equal(obs, expected_obs)
            np.testing.assert_array_equal(info["action_mask"], expected_info["action_mask"])
            for key in ("ante", "round", "blind", "target", "score", "money", "hands_left",
                        "discards_left", "phase"):
                assert info[key] == expected_info[key], key
            if fake.state_name() != "BLIND_SELECT":
                assert env.text_view() == sim.text_view()
            compared += 1
            phases.add(info["phase"])
            legal = np.flatnonzero(info["action_mask"])
            # Mostly the heuristic (it wins blinds, so shops and bosses are reached), some
            # random legal moves (skips, rerolls, sells, discards).
            action = agent.act(obs, info, explore=False) if rng.random() < 0.85 \
                else int(rng.choice(legal))
            target, sent = info["target"], len(fake.calls)
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            if action < A.DISCARD:
                beaten = "cash_out" in [m for m, _ in fake.calls[sent:]]
                assert reward == pytest.approx(fake.last_play_score / target + beaten)
                assert info["last_hand"]["score"] == fake.last_play_score
            else:
                assert reward == 0.0
            done = terminated or truncated
        assert terminated and fake.state_name() == "GAME_OVER" and info["phase"] == "game_over"
        assert not info["action_mask"].any()
    assert {"play", "shop", "blind_select"} <= phases and compared == steps
    assert {m for m, _ in fake.calls} >= {"menu", "start", "select", "play", "cash_out", "buy",
                                          "next_round"}


def test_blind_mode_plays_the_first_blind_only(fake):
    env = BalatroLiveEnv(url=fake.url, mode="blind")
    agent = HeuristicAgent(env.observation_space, env.action_space)
    obs, info = env.reset(seed=5)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info, explore=False))
        total += reward
        done = terminated or truncated
    assert terminated and info["phase"] == "game_over" and not info["action_mask"].any()
    if info["won"]:  # beaten: the episode ends at the round's end, before cashing out
        assert fake.state_name() == "ROUND_EVAL" and total >= 2.0
    else:
        assert fake.state_name() == "GAME_OVER" and total < 1.0
    assert "cash_out" not in [m for m, _ in fake.calls]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_check_env_seeds_and_registration(fake):
    env = gym.make("pipeline/BalatroLive-v0", url=fake.url).unwrapped
    assert isinstance(env, BalatroLiveEnv) and isinstance(env, TextGame)
    env.action_space.seed(0)
    check_env(env, skip_render_check=True)
    a, _ = env.reset(seed=11)
    method, params = fake.calls[-2]
    assert method == "start" and params["deck"] == "RED" and params["stake"] == "WHITE"
    assert len(params["seed"]) == 8 and params["seed"].isalnum()
    b, _ = env.reset(seed=11)
    assert fake.calls[-2] == ("start", params)
    np.testing.assert_array_equal(a, b)
    assert seed_string(7) == seed_string(7) != seed_string(8)
    fixed = BalatroLiveEnv(url=fake.url, seed="ABC123", stake="red")
    fixed.reset(seed=1)
    assert fake.calls[-2] == ("start", {"deck": "RED", "stake": "RED", "seed": "ABC123"})
    assert fixed.render().shape[2] == 3


def test_deck_name_falls_back_to_the_deck_key():
    with FakeBalatroBot(deck_style="key") as server:
        env = BalatroLiveEnv(url=server.url, deck="blue")
        env.reset(seed=0)
        env.reset(seed=1)
        starts = [p["deck"] for m, p in server.calls if m == "start"]
        assert starts == ["BLUE", "b_blue", "b_blue"]  # learnt once, then used directly


def test_illegal_actions_are_refused_before_anything_is_sent(fake):
    env = BalatroLiveEnv(url=fake.url)
    obs, info = env.reset(seed=2)
    sent = len(fake.calls)
    with pytest.raises(IllegalActionError, match="illegal action 436 .select.*blind_select"):
        env.step(A.SELECT)
    assert len(fake.calls) == sent
    assert env.parse_action("play 1 2") == A.SUBSET_INDEX[(0, 1)]
    # Reach a blind selection holding a joker: the simulator could sell it there, the game not.
    fake.game.jokers, fake.game.joker_sell = [0], [1]
    fake.game.phase = 0  # blind_select
    env._observe(fake.gamestate())
    assert not env.action_mask()[A.SELL]
    with pytest.raises(IllegalActionError, match="sells jokers only in the shop"):
        env.step(A.SELL)
    with pytest.raises(IllegalActionError, match="sells jokers only in the shop"):
        env.parse_action("sell 1")
    assert "sell" not in env.text_view().rsplit("Legal now: ", 1)[-1]


def test_connection_failure_is_one_clear_line():
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = BalatroLiveEnv(url=f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(BalatroConnectionError) as err:
        env.reset()
    line = one_line_error(err.value)
    assert line.startswith(f"env.url: cannot reach balatrobot at http://127.0.0.1:{port}")
    assert "balatrobot mod" in line and "\n" not in line


@pytest.mark.parametrize("reply,match", [
    (lambda req: b"<html>hello</html>", "not JSON"),
    (lambda req: json.dumps({"result": {}}).encode(), "not a JSON-RPC 2.0 response"),
    (lambda req: json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": [1]}).encode(),
     "not a GameState"),
    (lambda req: json.dumps({"jsonrpc": "2.0", "id": 999, "result": {"state": "MENU"}}).encode(),
     "the response to id 999"),
])
def test_protocol_errors_are_named(reply, match):
    with FakeBalatroBot(reply=reply) as server:
        with pytest.raises(BalatroProtocolError, match=match):
            BalatroLiveEnv(url=server.url).reset()


def test_rpc_errors_and_a_second_client_are_reported(fake):
    env = BalatroLiveEnv(url=fake.url)
    env.reset(seed=3)
    with pytest.raises(BalatroRPCError, match=r"refused skip: INVALID_STATE \(-32002\)") as err:
        env.client.call("skip")
    assert err.value.name == "INVALID_STATE"
    other = BalatroLiveEnv(url=fake.url)
    other.reset(seed=4)  # a second client takes the game over
    with pytest.raises(BalatroLiveError, match="another client started a run"):
        env.step(int(np.flatnonzero(env.action_mask())[0]))


def test_constructor_errors_name_the_key():
    with pytest.raises(ValueError, match=r"^env\.url: 'localhost:12346' is not allowed"):
        BalatroLiveEnv(url="localhost:12346")
    with pytest.raises(ValueError, match=r"^env\.deck: 'plasma'.*red, blue, yellow, green"):
        BalatroLiveEnv(deck="plasma")
    with pytest.raises(ValueError, match=r"^env\.seed"):
        BalatroLiveEnv(seed="no spaces")


def _card(key, **state):
    return {"key": key, "set": "DEFAULT", "value": {"suit": key[0], "rank": key[2]} if
            key[0] in "HDCS" else {}, "state": state}


def test_encoder_handles_what_the_simulator_cannot_produce():
    hand = [_card("H_2"), _card("S_A"), _card("C_K", hidden=True), {"key": "m_stone", "state": {}},
            _card("D_5"), _card("H_A"), _card("S_9"), _card("C_3"), _card("D_J"), _card("D_2")]
    gs = {
        "state": "SELECTING_HAND", "ante_num": 2, "round_num": 4, "money": 12, "won": False,
        "hands": {"Pair": {"level": 3, "played": 2, "played_this_round": 1}},
        "round": {"hands_left": 3, "discards_left": 2, "chips": 150, "reroll_cost": 5},
        "blinds": {"small": {"status": "DEFEATED", "tag": {"key": "tag_juggle"}},
                   "big": {"status": "CURRENT", "score": 1200, "tag": {"key": "tag_economy"}},
                   "boss": {"status": "UPCOMING", "key": "bl_some_new_boss"}},
        "jokers": {"cards": [{"key": "j_blueprint", "label": "Blueprint",
                              "value": {"effect": "Copies ability of Joker to the right"},
                              "cost": {"sell": 5}},
                             {"key": "j_joker", "label": "Joker", "cost": {"sell": 1}}]},
        "hand": {"limit": 10, "cards": hand},
        "cards": {"cards": [_card("S_2"), _card("H_T")]},
    }
    enc = GameStateEncoder()
    obs, info = enc.encode(gs)
    g = enc.sim.game
    # The simulator's order (rank, then suit, descending); the 9th card (D_2) and the Stone
    # card (no rank or suit) cannot be addressed.
    assert enc.hand_order == [1, 5, 2, 8, 6, 4, 7, 0]
    assert enc.extra_hand == 2 and g.hand_size == 8
    assert info["blind"] == "big" and info["target"] == 1200 and info["money"] == 12
    assert (info["hands_left"], info["discards_left"], info["score"]) == (3, 2, 150)
    assert info["jokers"] == ["Blueprint", "Joker"]
    assert not obs[O_JOKERS:O_JOKERS + 27].any() and obs[O_JOKERS + 27] == 1.0
    assert not obs[O_TAGS:O_TAGS + 12].any() and obs[O_TAGS + 12:O_TAGS + 24].any()
    assert not obs[O_BOSS:O_BOSS + 28].any()
    assert info["action_mask"][A.SELL:A.SELL + 2].all() and not info["action_mask"][A.SELL + 2]
    assert enc.call_for(A.SUBSET_INDEX[(0, 1)]) == ("play", {"cards": [1, 5]})
    assert enc.call_for(A.DISCARD + A.SUBSET_INDEX[(2,)]) == ("discard", {"cards": [2]})
    assert enc.call_for(A.SELL + 1) == ("sell", {"joker": 1})
    assert enc.call_for(A.LEAVE) == ("next_round", {})
    text = enc.text_view()
    assert "1. Blueprint (Copies ability of Joker to the right) [sell $5]" in text
    assert "(+2 more that cannot be played from here" in text
    # The shop: a Tarot is not modelled, so its slot is empty and cannot be bought.
    gs.update(state="SHOP", shop={"cards": [
        {"key": "c_fool", "set": "TAROT", "label": "The Fool", "cost": {"buy": 3}},
        {"key": "c_mercury", "set": "PLANET", "label": "Mercury", "cost": {"buy": 3}}]})
    obs, info = enc.encode(gs)
    assert not info["action_mask"][A.BUY] and info["action_mask"][A.BUY + 1]
    assert "1: The Fool (Tarot; not modelled, cannot be bought" in enc.text_view()
    # Under a boss, a face-down card the GameState does not describe is still playable.
    gs.update(state="SELECTING_HAND", hand={"limit": 8, "cards": [
        _card("S_A"), {"key": "", "state": {"hidden": True}}, _card("H_3")]})
    gs["blinds"] = {"small": {"status": "DEFEATED"}, "big": {"status": "DEFEATED"},
                    "boss": {"status": "CURRENT", "key": "bl_mark", "score": 2000}}
    obs, info = enc.encode(gs)
    assert enc.hand_order == [0, 2, 1] and info["action_mask"][A.SUBSET_INDEX[(2,)]]
    assert "Hand: 1:A♠  2:3♥  3:??" in enc.text_view()
    with pytest.raises(BalatroProtocolError, match="GameState.state: 'MENU' has no observation"):
        enc.encode({"state": "MENU"})


def test_a_run_of_the_pipeline_plays_the_live_game(fake, compose_cfg, tmp_path, monkeypatch):
    from pipeline import run

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg("env=balatro_live", f"env.url={fake.url}", "agent=heuristic",
                      "tracking=none", "callbacks=none", "run.total_steps=40",
                      "run.eval_every=0", "run.eval_episodes=1", "run.progress=false")
    objective = run.main(cfg)
    assert np.isfinite(objective)
    assert sum(m == "start" for m, _ in fake.calls) >= 2  # training, then the evaluation
