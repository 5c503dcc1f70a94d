"""Golden scoring tests: each expected chips x mult is worked out by hand from the tables
of /work/shared/reference/balatro_rules.md (section 1 hand bases and levels, section 2 card
chips and scoring order, section 4 jokers) and VR src/blinds.lua for boss effects.

Card chips: 2-10 face value, J/Q/K 10, A 11. Level N = base + (N-1) x increment.
"""
from __future__ import annotations

import pytest

from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro.cards import parse_card
from pipeline.envs.balatro.game import PHASE_OVER, PHASE_SHOP, BalatroGame
from pipeline.envs.balatro.hands import HAND_NAMES, evaluate
from pipeline.envs.balatro.scoring import score_cards


def cards(*names: str) -> list[int]:
    out = [parse_card(n) for n in names]
    assert None not in out, names
    return out


def levels(**over: int) -> list[int]:
    lv = [1] * 12
    for name, value in over.items():
        lv[HAND_NAMES.index(name.replace("_", " "))] = value
    return lv


FLUSH_H = ("Ah", "Kh", "10h", "5h", "4h")          # card chips 11+10+10+5+4 = 40
PAIR_9 = ("9s", "9d")                               # card chips 18
FULL_K = ("Ks", "Kh", "Kd", "2c", "2s")             # card chips 30+4 = 34
QUADS_J = ("Js", "Jh", "Jc", "Jd", "3c")            # scoring 4 jacks = 40 (the 3 is a kicker)
SF_Q = ("Qs", "Js", "10s", "9s", "8s")              # card chips 10+10+10+9+8 = 47
STR_J = ("Jd", "10c", "9c", "8s", "7h")             # card chips 10+10+9+8+7 = 44
WHEEL = ("As", "5h", "4d", "3c", "2s")              # card chips 11+5+4+3+2 = 25
LOW_STR = ("6s", "5h", "4d", "3c", "2s")            # card chips 6+5+4+3+2 = 20

# (id, played, jokers, levels, kwargs, hand type, chips, mult)
GOLDEN = [
    # --- the 12 hand types at level 1 (section 1 bases, section 2 scoring cards)
    ("high_card_ace", ("As",), [], levels(), {}, "High Card", 16, 1),                  # 5+11 x1 = 16
    ("high_card_kickers", ("Ks", "Qh", "9d", "4c", "2s"), [], levels(), {}, "High Card", 15, 1),  # only K: 5+10
    ("pair", ("9s", "9d", "Ks", "6h", "3d"), [], levels(), {}, "Pair", 28, 2),          # 10+9+9 = 28, x2 = 56
    ("two_pair", ("Ah", "Ad", "Qc", "4h", "4c"), [], levels(), {}, "Two Pair", 50, 2),  # 20+11+11+4+4 = 50 x2
    ("three_kind", ("10s", "10c", "10d", "6h", "5d"), [], levels(), {}, "Three of a Kind", 60, 3),  # 30+30, x3
    ("straight", STR_J, [], levels(), {}, "Straight", 74, 4),                           # 30+44 = 74, x4 = 296
    ("straight_ace_low", WHEEL, [], levels(), {}, "Straight", 55, 4),                   # 30+25 = 55, x4 = 220
    ("straight_ace_high", ("Ah", "Ks", "Qd", "Jc", "10s"), [], levels(), {}, "Straight", 81, 4),  # 30+51
    ("no_wraparound", ("Ks", "Ah", "2d", "3c", "4s"), [], levels(), {}, "High Card", 16, 1),  # K-A-2: only A
    ("flush", FLUSH_H, [], levels(), {}, "Flush", 75, 4),                               # 35+40 = 75, x4 = 300
    ("full_house", FULL_K, [], levels(), {}, "Full House", 74, 4),                      # 40+34 = 74, x4 = 296
    ("four_kind", QUADS_J, [], levels(), {}, "Four of a Kind", 100, 7),                 # 60+40, x7 = 700
    ("straight_flush", SF_Q, [], levels(), {}, "Straight Flush", 147, 8),               # 100+47, x8 = 1176
    ("royal_flush", ("Ah", "Kh", "Qh", "Jh", "10h"), [], levels(), {}, "Straight Flush", 151, 8),  # 100+51
    ("five_kind", ("As", "Ah", "Ad", "Ac", "As"), [], levels(), {}, "Five of a Kind", 175, 12),  # 120+55
    ("flush_house", ("7d", "7d", "7d", "4d", "4d"), [], levels(), {}, "Flush House", 169, 14),   # 140+21+8
    ("flush_five", ("As",) * 5, [], levels(), {}, "Flush Five", 215, 16),                # 160+55, x16
    # --- levels (level N = base + (N-1) x increment)
    ("flush_lv5", FLUSH_H, [], levels(Flush=5), {}, "Flush", 135, 12),       # 35+4*15 = 95 +40; 4+4*2 = 12
    ("pair_lv3", PAIR_9, [], levels(Pair=3), {}, "Pair", 58, 4),             # 10+2*15 = 40 +18; 2+2*1 = 4
    ("high_lv2", ("As",), [], levels(High_Card=2), {}, "High Card", 26, 2),  # 15+11; 1+1
    ("straight_lv2", WHEEL, [], levels(Straight=2), {}, "Straight", 85, 7),  # 30+30 = 60 +25; 4+3 = 7
    # --- jokers: independent effects, left to right
    ("joker", PAIR_9, [J.JOKER], levels(), {}, "Pair", 28, 6),               # mult 2+4
    ("jolly_full_house", FULL_K, [J.JOLLY], levels(), {}, "Full House", 74, 12),  # FH contains a Pair: 4+8
    ("zany_quads", QUADS_J, [J.ZANY], levels(), {}, "Four of a Kind", 100, 19),   # quads contain Trips: 7+12
    ("mad_quads_no", QUADS_J, [J.MAD], levels(), {}, "Four of a Kind", 100, 7),   # one rank: no Two Pair
    ("mad_full_house", FULL_K, [J.MAD], levels(), {}, "Full House", 74, 14),      # FH contains Two Pair: 4+10
    ("crazy_straight_flush", SF_Q, [J.CRAZY], levels(), {}, "Straight Flush", 147, 20),  # 8+12
    ("droll_flush", FLUSH_H, [J.DROLL], levels(), {}, "Flush", 75, 14),          # 4+10
    ("sly_two_pair", ("Ah", "Ad", "Qc", "4h", "4c"), [J.SLY], levels(), {}, "Two Pair", 100, 2),  # 50+50
    ("wily_full_house", FULL_K, [J.WILY], levels(), {}, "Full House", 174, 4),   # 74+100
    ("clever_pair_no", PAIR_9, [J.CLEVER], levels(), {}, "Pair", 28, 2),         # a Pair is not Two Pair
    ("devious_straight", STR_J, [J.DEVIOUS], levels(), {}, "Straight", 174, 4),  # 74+100
    ("crafty_flush", FLUSH_H, [J.CRAFTY], levels(), {}, "Flush", 155, 4),        # 75+80
    ("half_two_cards", PAIR_9, [J.HALF], levels(), {}, "Pair", 28, 22),          # 2 cards <= 3: 2+20
    ("half_five_cards_no", ("9s", "9d", "Ks", "6h", "3d"), [J.HALF], levels(), {}, "Pair", 28, 2),
    ("banner_3_discards", ("As",), [J.BANNER], levels(), {"discards_left": 3}, "High Card", 106, 1),  # 16+3*30
    ("mystic_0_discards", PAIR_9, [J.MYSTIC_SUMMIT], levels(), {"discards_left": 0}, "Pair", 28, 17),  # 2+15
    ("mystic_1_discard_no", PAIR_9, [J.MYSTIC_SUMMIT], levels(), {"discards_left": 1}, "Pair", 28, 2),
    # Joker +4, Abstract +3*3 jokers, Sly +50 chips: chips 28+50 = 78, mult 2+4+9 = 15
    ("abstract_three", PAIR_9, [J.JOKER, J.ABSTRACT, J.SLY], levels(), {}, "Pair", 78, 15),
    ("gros_michel", PAIR_9, [J.GROS_MICHEL], levels(), {}, "Pair", 28, 17),      # 2+15
    ("joker_then_duo", PAIR_9, [J.JOKER, J.THE_DUO], levels(), {}, "Pair", 28, 12),  # (2+4)*2
    ("duo_then_joker", PAIR_9, [J.THE_DUO, J.JOKER], levels(), {}, "Pair", 28, 8),   # 2*2+4
    ("duo_high_card_no", ("As",), [J.THE_DUO], levels(), {}, "High Card", 16, 1),
    # --- per-card jokers fire for scoring cards only, after each card's chips
    ("greedy_flush", ("Ad", "9d", "7d", "4d", "2d"), [J.GREEDY], levels(), {}, "Flush", 68, 19),  # 35+33; 4+5*3
    ("lusty_pair", ("Kh", "Ks"), [J.LUSTY], levels(), {}, "Pair", 30, 5),        # 10+20; 2+3 (one Heart)
    ("wrathful_kickers_no", ("Ah", "9s", "7s", "5s", "2s"), [J.WRATHFUL], levels(), {}, "High Card", 16, 1),
    ("gluttonous_trips", ("10c", "10s", "10d"), [J.GLUTTONOUS], levels(), {}, "Three of a Kind", 60, 6),  # 3+3
    ("scary_full_house", FULL_K, [J.SCARY_FACE], levels(), {}, "Full House", 164, 4),  # 74+3*30
    ("smiley_two_pair", ("Ks", "Kd", "Qs", "Qh", "4c"), [J.SMILEY_FACE], levels(), {}, "Two Pair", 60, 22),  # 20+40; 2+4*5
    ("even_steven_straight", LOW_STR, [J.EVEN_STEVEN], levels(), {}, "Straight", 50, 16),  # 30+20; 4+3*4 (6,4,2)
    ("odd_todd_straight", LOW_STR, [J.ODD_TODD], levels(), {}, "Straight", 112, 4),        # 50+2*31 (5,3)
    ("scholar_aces", ("As", "Ah"), [J.SCHOLAR], levels(), {}, "Pair", 72, 10),    # 10+2*(11+20); 2+2*4
    ("fibonacci_wheel", WHEEL, [J.FIBONACCI], levels(), {}, "Straight", 55, 36),  # A,5,3,2 fire: 4+4*8
    # Scholar then Fibonacci on each Ace: chips 10+2*(11+20) = 72; mult 2+2*(4+8) = 26
    ("scholar_fibonacci", ("As", "Ah"), [J.SCHOLAR, J.FIBONACCI], levels(), {}, "Pair", 72, 26),
    # --- boss effects as scoring arguments
    # The Flint: chips floor(35*0.5+0.5) = 18, mult floor(4*0.5+0.5) = 2; + cards 40
    ("flint_flush", FLUSH_H, [], levels(), {"flint": True}, "Flush", 58, 2),
    ("flint_high_card", ("As",), [], levels(), {"flint": True}, "High Card", 14, 1),  # chips 3, mult max(1, 1)
    ("flint_pair_joker", PAIR_9, [J.JOKER], levels(), {"flint": True}, "Pair", 23, 5),  # 5+18; 1+4
    # The Club: the 10 of Clubs adds no chips but still makes Three of a Kind
    ("club_debuff", ("10c", "10s", "10d"), [], levels(), {"debuffed": "club"}, "Three of a Kind", 50, 3),
    ("club_debuff_gluttonous", ("10c", "10s", "10d"), [J.GLUTTONOUS], levels(), {"debuffed": "club"},
     "Three of a Kind", 50, 3),                                                     # no +3 from the debuffed Club
    # The Goad: every Spade debuffed, a spade flush is base only; Droll still sees the Flush
    ("goad_flush_droll", ("As", "Ks", "9s", "5s", "2s"), [J.DROLL], levels(), {"debuffed": "goad"},
     "Flush", 35, 14),
    ("head_lusty", ("Kh", "Ks"), [J.LUSTY], levels(), {"debuffed": "head"}, "Pair", 20, 2),  # K♥ silent
    ("plant_full_house_scary", FULL_K, [J.SCARY_FACE], levels(), {"debuffed": "plant"}, "Full House", 44, 4),
    ("psychic_four_cards", ("Ah", "Ad", "4h", "4c"), [J.JOKER], levels(), {"allowed": False}, "Two Pair", 0, 0),
]

_DEBUFF_SETS = {
    "club": {c for c in range(52) if c & 3 == 1},
    "goad": {c for c in range(52) if c & 3 == 3},
    "head": {c for c in range(52) if c & 3 == 2},
    "plant": {c for c in range(52) if 9 <= c >> 2 <= 11},
}


@pytest.mark.parametrize("case", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_hand(case):
    _, played, jokers, lv, kwargs, hand_type, chips, mult = case
    kwargs = dict(kwargs)
    if "debuffed" in kwargs:
        kwargs["debuffed"] = _DEBUFF_SETS[kwargs["debuffed"]]
    result = score_cards(cards(*played), jokers, lv, **kwargs)
    assert HAND_NAMES[result.hand_type] == hand_type
    assert (result.chips, result.mult) == (chips, mult)
    assert result.score == chips * mult


def test_golden_count():
    assert len(GOLDEN) >= 40


def test_scoring_cards_only():
    # Pair with kickers: the two 9s (play positions 0, 1) score, kickers do not.
    assert evaluate(cards("9s", "9d", "Ks", "6h", "3d"))[1] == (0, 1)
    # Four of a Kind: the kicker 3 (position 4) does not score.
    assert evaluate(cards(*QUADS_J))[1] == (0, 1, 2, 3)
    # High Card: only the highest card, wherever it sits.
    assert evaluate(cards("2s", "Kd", "7h"))[1] == (1,)


# ----------------------------------------------------------------- boss effects in play
def rig(boss: int, hand: list[str], *, jokers=(), lv=None, ante: int = 3) -> BalatroGame:
    """A single-blind game against `boss` whose hand is exactly `hand` (deck conserved)."""
    game = BalatroGame(mode="blind", blind=B.BOSS, start_ante=ante)
    game.boss = boss
    game._start_round()
    game.return_cards()
    game.boss_active = boss
    game._update_debuffed()
    ids = cards(*hand)
    game.deck = [c for c in range(52) if c not in ids]
    game.hand = sorted(ids, reverse=True)
    game.jokers = list(jokers)
    game.joker_sell = [1] * len(game.jokers)
    if lv is not None:
        game.levels = lv
    return game


def positions(game: BalatroGame, *names: str) -> tuple[int, ...]:
    return tuple(sorted(game.hand.index(c) for c in cards(*names)))


def test_the_arm_lowers_level_before_scoring():
    game = rig(B.ARM, ["9s", "9d", "2c", "3c", "4h", "6d", "7s", "Kh"], lv=levels(Pair=3))
    result, _ = game.play(positions(game, "9s", "9d"))
    # level 3 -> 2: chips 10+15 = 25 +18 = 43; mult 2+1 = 3
    assert (result.chips, result.mult) == (43, 3)
    assert game.levels[1] == 2


def test_the_eye_forbids_repeats():
    game = rig(B.EYE, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    first, _ = game.play(positions(game, "9s", "9d"))
    assert first.score == 28 * 2                      # (10+18) x 2
    second, _ = game.play(positions(game, "8c", "8h"))
    assert second.score == 0                           # a second Pair scores nothing


def test_the_mouth_allows_one_type():
    game = rig(B.MOUTH, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    game.play(positions(game, "9s", "9d"))
    high, _ = game.play(positions(game, "Kh"))
    assert high.score == 0
    pair, _ = game.play(positions(game, "8c", "8h"))
    assert pair.score == (10 + 16) * 2                 # Pair again: 52


def test_the_psychic_needs_five_cards():
    game = rig(B.PSYCHIC, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    four, _ = game.play(positions(game, "9s", "9d", "8c", "8h"))
    assert four.score == 0
    five, _ = game.play((0, 1, 2, 3, 4))
    assert five.score > 0


def test_the_pillar_debuffs_cards_played_this_ante():
    game = rig(B.PILLAR, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    game.played_this_ante.add(parse_card("9s"))
    result, _ = game.play(positions(game, "9s", "9d"))
    assert (result.chips, result.mult) == (10 + 9, 2)   # the 9♠ adds nothing


def test_verdant_leaf_debuffs_all_until_a_joker_is_sold():
    game = rig(B.VERDANT_LEAF, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"], jokers=[J.JOKER, J.SLY], ante=8)
    game.verdant = True
    game._update_debuffed()
    assert game.preview(positions(game, "9s", "9d")).chips == 10 + 50   # base + Sly only
    game.sell(0)
    assert game.preview(positions(game, "9s", "9d")).chips == 10 + 18 + 50


def test_the_ox_takes_money_for_the_most_played_hand():
    game = rig(B.OX, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"], ante=6)
    game.most_played = 1        # Pair
    game.money = 20
    game.play(positions(game, "9s", "9d"))
    assert game.money == 0


def test_the_tooth_costs_a_dollar_per_card():
    game = rig(B.TOOTH, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    game.money = 10
    game.play(positions(game, "9s", "9d", "Kh"))
    assert game.money == 7


def test_the_hook_discards_two_after_play():
    game = rig(B.HOOK, ["9s", "9d", "8c", "8h", "4h", "6d", "7s", "Kh"])
    game.play(positions(game, "9s", "9d"))
    assert len(game.discard_pile) == 2 and len(game.hand) == 8
    assert game.card_counts() == 52


def test_round_start_boss_rules():
    water = BalatroGame(mode="blind", blind=B.BOSS, start_ante=2)
    water.boss = B.WATER
    water._start_round()
    assert water.discards_left == 0
    needle = BalatroGame(mode="blind", blind=B.BOSS, start_ante=2)
    needle.boss = B.NEEDLE
    needle._start_round()
    assert needle.hands_left == 1 and needle.target == 800          # The Needle: 1x ante 2 base
    manacle = BalatroGame(mode="blind", blind=B.BOSS, start_ante=1)
    manacle.boss = B.MANACLE
    manacle._start_round()
    assert len(manacle.hand) == 7
    wall = B.blind_target(2, B.BOSS, B.WALL, 0)
    vessel = B.blind_target(8, B.BOSS, B.VIOLET_VESSEL, 0)
    assert (wall, vessel) == (3200, 300000)                        # 800 x 4, 50000 x 6


def test_beating_the_last_boss_wins_and_losing_ends():
    game = rig(B.CLUB, ["As", "Ah", "Ad", "Ac", "Ks", "Kh", "Kd", "Kc"], ante=1)
    game.target = 10
    _, beaten = game.play(positions(game, "As", "Ah"))
    assert beaten and game.won and game.phase == PHASE_OVER
    game = rig(B.CLUB, ["2s", "3h", "5d", "7c", "9s", "Jh", "Kd", "4c"], ante=1)
    game.hands_left = 1
    _, beaten = game.play(positions(game, "2s"))
    assert not beaten and game.lost and game.phase == PHASE_OVER


def test_cash_out_money():
    # Big Blind ($4) beaten with 2 hands left holding $12: interest floor(12/5) = 2 -> 12+4+2+2 = 20
    game = BalatroGame(mode="run")
    game.blind_idx = B.BIG
    game._start_round()
    game.money, game.hands_left, game.target = 12, 3, 1
    game.play((0,))
    assert game.phase == PHASE_SHOP and game.money == 12 + 4 + 2 + 2
    # Interest is capped at $5: $60 held, Small Blind $3, 3 hands left -> 60+3+3+5 = 71
    game = BalatroGame(mode="run")
    game.money, game.target = 60, 1
    game.play((0,))
    assert game.money == 71
