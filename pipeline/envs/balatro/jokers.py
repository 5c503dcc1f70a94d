"""The 27 jokers of the reference table (section 4; VR src/jokers.lua), as data.

Each joker has an integer id (its row below), a name, a cost, a rarity and an effect
text. Effects come in two kinds, applied at different points of scoring:

- per-card effects (Greedy, Scary Face, Fibonacci, ...) fire for each scoring card, right
  after that card's chips; precomputed here as `PER_CARD[joker][card] -> (chips, mult)`;
- independent effects (+chips, +mult, xmult) fire once per hand, jokers left to right;
  computed in `pipeline.envs.balatro.scoring`.
"""
from __future__ import annotations

from pipeline.envs.balatro.cards import CLUBS, DIAMONDS, HEARTS, IS_FACE, N_CARDS, RANK_ACE, SPADES

COMMON, UNCOMMON, RARE = 1, 2, 3

# (name, cost, rarity, effect text)
JOKERS: tuple[tuple[str, int, int, str], ...] = (
    ("Joker", 2, COMMON, "+4 Mult"),
    ("Greedy Joker", 5, COMMON, "each scored Diamond gives +3 Mult"),
    ("Lusty Joker", 5, COMMON, "each scored Heart gives +3 Mult"),
    ("Wrathful Joker", 5, COMMON, "each scored Spade gives +3 Mult"),
    ("Gluttonous Joker", 5, COMMON, "each scored Club gives +3 Mult"),
    ("Jolly Joker", 3, COMMON, "+8 Mult if hand contains a Pair"),
    ("Zany Joker", 4, COMMON, "+12 Mult if hand contains Three of a Kind"),
    ("Mad Joker", 4, COMMON, "+10 Mult if hand contains Two Pair"),
    ("Crazy Joker", 4, COMMON, "+12 Mult if hand contains a Straight"),
    ("Droll Joker", 4, COMMON, "+10 Mult if hand contains a Flush"),
    ("Sly Joker", 3, COMMON, "+50 Chips if hand contains a Pair"),
    ("Wily Joker", 4, COMMON, "+100 Chips if hand contains Three of a Kind"),
    ("Clever Joker", 4, COMMON, "+80 Chips if hand contains Two Pair"),
    ("Devious Joker", 4, COMMON, "+100 Chips if hand contains a Straight"),
    ("Crafty Joker", 4, COMMON, "+80 Chips if hand contains a Flush"),
    ("Half Joker", 5, COMMON, "+20 Mult if played hand has 3 or fewer cards"),
    ("Banner", 5, COMMON, "+30 Chips for each remaining discard"),
    ("Mystic Summit", 5, COMMON, "+15 Mult when 0 discards remain"),
    ("Abstract Joker", 4, COMMON, "+3 Mult for each Joker owned"),
    ("Scary Face", 4, COMMON, "each scored face card gives +30 Chips"),
    ("Smiley Face", 4, COMMON, "each scored face card gives +5 Mult"),
    ("Even Steven", 4, COMMON, "each scored 2, 4, 6, 8 or 10 gives +4 Mult"),
    ("Odd Todd", 4, COMMON, "each scored A, 3, 5, 7 or 9 gives +31 Chips"),
    ("Scholar", 4, COMMON, "each scored Ace gives +20 Chips and +4 Mult"),
    ("Gros Michel", 5, COMMON, "+15 Mult; 1 in 6 chance to be destroyed at end of round"),
    ("Fibonacci", 8, UNCOMMON, "each scored A, 2, 3, 5 or 8 gives +8 Mult"),
    ("The Duo", 8, RARE, "X2 Mult if hand contains a Pair"),
)
N_JOKERS = len(JOKERS)
(JOKER, GREEDY, LUSTY, WRATHFUL, GLUTTONOUS, JOLLY, ZANY, MAD, CRAZY, DROLL, SLY, WILY, CLEVER,
 DEVIOUS, CRAFTY, HALF, BANNER, MYSTIC_SUMMIT, ABSTRACT, SCARY_FACE, SMILEY_FACE, EVEN_STEVEN,
 ODD_TODD, SCHOLAR, GROS_MICHEL, FIBONACCI, THE_DUO) = range(N_JOKERS)
JOKER_NAMES = tuple(j[0] for j in JOKERS)
JOKER_COSTS = tuple(j[1] for j in JOKERS)
JOKER_RARITY = tuple(j[2] for j in JOKERS)
JOKER_TEXT = tuple(j[3] for j in JOKERS)
GROS_MICHEL_ODDS = 6


def sell_value(cost: int) -> int:
    """Reference section 5: max(1, floor(cost / 2))."""
    return max(1, cost // 2)


def _per_card(joker: int, card: int) -> tuple[int, int]:
    rank, suit = card >> 2, card & 3
    value = rank + 2  # 2..14, Ace = 14
    if joker == GREEDY:
        return (0, 3) if suit == DIAMONDS else (0, 0)
    if joker == LUSTY:
        return (0, 3) if suit == HEARTS else (0, 0)
    if joker == WRATHFUL:
        return (0, 3) if suit == SPADES else (0, 0)
    if joker == GLUTTONOUS:
        return (0, 3) if suit == CLUBS else (0, 0)
    if joker == SCARY_FACE:
        return (30, 0) if IS_FACE[card] else (0, 0)
    if joker == SMILEY_FACE:
        return (0, 5) if IS_FACE[card] else (0, 0)
    if joker == EVEN_STEVEN:
        return (0, 4) if value <= 10 and value % 2 == 0 else (0, 0)
    if joker == ODD_TODD:
        return (31, 0) if rank == RANK_ACE or (value <= 10 and value % 2 == 1) else (0, 0)
    if joker == SCHOLAR:
        return (20, 4) if rank == RANK_ACE else (0, 0)
    if joker == FIBONACCI:
        return (0, 8) if rank == RANK_ACE or value in (2, 3, 5, 8) else (0, 0)
    return (0, 0)


PER_CARD_JOKERS = frozenset((GREEDY, LUSTY, WRATHFUL, GLUTTONOUS, SCARY_FACE, SMILEY_FACE,
                             EVEN_STEVEN, ODD_TODD, SCHOLAR, FIBONACCI))
PER_CARD: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple(_per_card(j, c) for c in range(N_CARDS)) for j in range(N_JOKERS))


def joker_text(joker: int) -> str:
    return f"{JOKER_NAMES[joker]} ({JOKER_TEXT[joker]})"
