"""Run-level rules: shop, reroll, selling, planets, Gros Michel, skip tags, decks, bosses."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.game import MAX_JOKERS, PHASE_BLIND_SELECT, PHASE_SHOP, BalatroGame
from pipeline.envs.text import IllegalActionError


def in_shop(seed: int = 0, money: int = 50) -> BalatroEnv:
    env = BalatroEnv()
    env.reset(seed=seed)
    env.game.target = 1
    env.step(A.PLAY)
    assert env.game.phase == PHASE_SHOP
    env.game.money = money
    env.current_observation()
    return env


def test_all_27_jokers_with_reference_costs():
    assert J.N_JOKERS == 27
    costs = dict(zip(J.JOKER_NAMES, J.JOKER_COSTS))
    assert costs["Joker"] == 2 and costs["Jolly Joker"] == 3 and costs["Sly Joker"] == 3
    assert costs["Fibonacci"] == 8 and costs["The Duo"] == 8 and costs["Gros Michel"] == 5
    assert [J.sell_value(c) for c in (2, 3, 5, 8)] == [1, 1, 2, 4]


def test_shop_buy_joker_and_planet():
    env = in_shop()
    g = env.game
    g.shop = [[S.SLOT_JOKER, J.THE_DUO, 8], [S.SLOT_PLANET, 5, 3]]       # Duo, Jupiter (Flush)
    _, _, _, _, info = env.step(A.BUY)
    assert info["jokers"] == ["The Duo"] and info["money"] == 42
    _, _, _, _, info = env.step(A.BUY + 1)
    assert g.levels[5] == 2 and info["money"] == 39
    assert not info["action_mask"][A.BUY] and not info["action_mask"][A.BUY + 1]   # slots emptied
    _, _, _, _, info = env.step(A.SELL)
    assert info["jokers"] == [] and info["money"] == 43                   # Duo sells for floor(8/2)


def test_joker_slots_are_limited_to_five():
    env = in_shop()
    g = env.game
    g.jokers, g.joker_sell = [J.JOKER] * MAX_JOKERS, [1] * MAX_JOKERS
    g.shop = [[S.SLOT_JOKER, J.SLY, 3], [S.SLOT_PLANET, 1, 3]]
    _, info = env.current_observation()
    assert not info["action_mask"][A.BUY] and info["action_mask"][A.BUY + 1]
    with pytest.raises(IllegalActionError, match="joker slots are full"):
        env.step(A.BUY)


def test_reroll_costs_five_plus_one_each_time():
    env = in_shop(money=20)
    for expected_cost, money_after in ((5, 15), (6, 9)):
        assert env.game.reroll_cost == expected_cost
        env.step(A.REROLL)
        assert env.game.money == money_after
    assert env.game.reroll_cost == 7
    _, info = env.current_observation()
    assert info["action_mask"][A.REROLL]
    env.step(A.REROLL)                     # $9 -> $2, next costs $8
    _, info = env.current_observation()
    assert not info["action_mask"][A.REROLL]
    env.step(A.LEAVE)
    env.step(A.SELECT)
    env.game.target = 1
    env.step(A.PLAY)
    assert env.game.reroll_cost == 5       # a new shop starts at $5 again


def test_shop_never_offers_owned_or_duplicate_jokers():
    game = BalatroGame()
    game.jokers = [j for j in range(J.N_JOKERS) if J.JOKER_RARITY[j] == J.COMMON][:4]
    for _ in range(300):
        game._fill_shop()
        offered = [item for kind, item, _ in game.shop if kind == S.SLOT_JOKER]
        assert len(set(offered)) == len(offered)
        assert not set(offered) & set(game.jokers)


def test_gros_michel_destruction_uses_game_rng():
    destroyed = 0
    for seed in range(300):
        game = BalatroGame()
        game.new_game(seed)
        game.jokers, game.joker_sell = [J.GROS_MICHEL], [2]
        game.target = 1
        game.play((0,))
        destroyed += J.GROS_MICHEL not in game.jokers
    assert 25 <= destroyed <= 80            # 1 in 6 of 300 = 50
    a, b = BalatroGame(), BalatroGame()
    for g in (a, b):
        g.new_game(5)
        g.jokers, g.joker_sell, g.target = [J.GROS_MICHEL] * 3, [2] * 3, 1
        g.play((0,))
    assert a.jokers == b.jokers


def test_skip_tags():
    game = BalatroGame()
    game.new_game(0)
    game.target = 1
    game.play((0,))
    game.leave_shop()
    assert game.phase == PHASE_BLIND_SELECT and game.blind_idx == B.BIG
    game.tags[B.BIG] = B.TAG_ECONOMY
    money = game.money
    game.skip_blind()
    assert game.money == money + min(40, money) and game.blind_idx == B.BOSS and game.skips == 1
    game.money = 3
    game._gain_tag(B.TAG_SPEED)
    assert game.money == 3 + 5
    game._gain_tag(B.TAG_TOP_UP)
    assert len(game.jokers) == 2 and all(J.JOKER_RARITY[j] == J.COMMON for j in game.jokers)
    before = list(game.levels)
    game._gain_tag(B.TAG_ORBITAL)
    assert sum(game.levels) == sum(before) + 3
    game._gain_tag(B.TAG_COUPON)
    game._gain_tag(B.TAG_D6)
    game._open_shop()
    assert all(slot[2] == 0 for slot in game.shop) and game.reroll_cost == 0


def test_double_tag_copies_the_next_tag():
    game = BalatroGame()
    game.new_game(1)
    game.phase, game.blind_idx, game.money = PHASE_BLIND_SELECT, B.SMALL, 0
    game.tags = [B.TAG_DOUBLE, B.TAG_SPEED]
    game.skip_blind()
    game.skip_blind()                        # Speed Tag twice: 2 skips x $5, twice
    assert game.money == 20


def test_investment_tag_pays_after_the_boss():
    game = BalatroGame()
    game.new_game(3)
    game.pending_tags = [B.TAG_INVESTMENT]
    game.blind_idx = B.BOSS
    game._start_round()
    game.money, game.target = 0, 1
    game.play((0,))
    reward = B.SHOWDOWN_REWARD if B.BOSS_SHOWDOWN[game.boss] else 5
    # $5 boss reward + 3 unused hands + $25 investment (no interest on $0)
    assert game.money == reward + 3 + 25 and game.ante == 2


@pytest.mark.parametrize("deck, hands, discards, money", [
    ("red", 4, 4, 4), ("blue", 5, 3, 4), ("yellow", 4, 3, 14), ("green", 4, 3, 4)])
def test_decks(deck, hands, discards, money):
    _, info = BalatroEnv(deck=deck).reset(seed=0)
    assert (info["hands_left"], info["discards_left"], info["money"]) == (hands, discards, money)


def test_blue_stake_removes_a_discard():
    _, info = BalatroEnv(stake="blue").reset(seed=0)
    assert info["discards_left"] == 3 and info["target"] == 300


def test_boss_pool_respects_min_ante_and_showdown():
    for ante in range(1, 9):
        for boss in B.boss_pool(ante):
            assert B.BOSS_SHOWDOWN[boss] == (ante == 8)
            assert B.BOSS_MIN_ANTE[boss] <= ante
    assert B.OX not in B.boss_pool(5) and B.OX in B.boss_pool(6)


def test_bosses_rotate_before_repeating():
    game = BalatroGame()
    game.new_game(0)
    game.ante, game.bosses_used = 1, [0] * B.N_BOSSES
    seen = [game._pick_boss() for _ in range(len(B.boss_pool(1)))]
    assert sorted(seen) == sorted(B.boss_pool(1))


def test_suit_debuff_is_visible_in_observation():
    env = BalatroEnv(mode="blind", blind="boss")
    for seed in range(60):
        env.reset(seed=seed)
        if env.game.boss in B.BOSS_DEBUFF_SUIT:
            break
    suit = B.BOSS_DEBUFF_SUIT[env.game.boss]
    obs, _ = env.current_observation()
    slots = obs[:168].reshape(8, 21)
    for i, card in enumerate(env.game.hand):
        assert slots[i, 19] == (card & 3 == suit)
    assert obs[451 + env.game.boss] == 1 and obs[451 + B.N_BOSSES] == 1


def test_cerulean_bell_forces_a_card_into_every_selection():
    game = BalatroGame(mode="blind", blind=B.BOSS, start_ante=8)
    game.boss = B.CERULEAN_BELL
    game._start_round()
    env = BalatroEnv(mode="blind", blind="boss", start_ante=8)
    env.reset(seed=0)
    env.game = game
    _, info = env.current_observation()
    pos = game.hand.index(game.forced)
    legal = np.flatnonzero(info["action_mask"][:A.DISCARD])
    assert len(legal) > 0 and all(pos in A.SUBSETS[k] for k in legal)


def test_face_down_cards_are_hidden():
    game = BalatroGame(mode="blind", blind=B.BOSS, start_ante=2)
    game.boss = B.HOUSE
    game._start_round()
    assert set(game.hand) == game.face_down           # the first hand is drawn face down
    env = BalatroEnv(mode="blind", blind="boss", start_ante=2)
    env.reset(seed=0)
    env.game = game
    obs, _ = env.current_observation()
    slots = obs[:168].reshape(8, 21)
    assert (slots[:, :17] == 0).all() and (slots[:, 18] == 1).all()
    assert "??" in env.text_view()


def test_winning_the_run_after_ante_8_boss():
    env = BalatroEnv(start_ante=8)
    env.reset(seed=0)
    g = env.game
    g.blind_idx = B.BOSS
    g._start_round()
    g.target = 1
    env.current_observation()
    _, reward, term, _, info = env.step(A.PLAY)
    assert term and info["won"] and info["game"]["won"] == 1.0 and reward >= 1.0


def test_endless_continues_after_the_win():
    env = BalatroEnv(start_ante=8, endless=True)
    env.reset(seed=0)
    g = env.game
    g.blind_idx = B.BOSS
    g._start_round()
    g.target = 1
    env.current_observation()
    _, _, term, _, info = env.step(A.PLAY)
    assert not term and info["won"] and info["phase"] == "shop" and info["ante"] == 9
