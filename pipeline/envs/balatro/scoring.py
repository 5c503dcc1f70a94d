"""Scoring a played hand, in the order of reference section 2.

1. hand base: chips and mult of the hand type at its level (The Flint then halves both,
   rounding half up, mult at least 1: VR src/blinds.lua);
2. each scoring card left to right (in play order): its chips, then the per-card effects
   of the jokers in joker order (Greedy, Scholar, Fibonacci, ...). Debuffed cards add
   nothing and trigger nothing, but still count when the hand type is detected;
3. held-in-hand effects (none of the implemented jokers or cards has one);
4. jokers left to right: +chips, +mult, xmult each applied when its joker is reached.

Every quantity is an integer here (the only xmult is The Duo's x2), so the final score
`floor(chips x mult)` is exact; the floor is kept for fractional multipliers.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro.cards import CARD_CHIPS

_PER_CARD = J.PER_CARD
_PER_CARD_SET = J.PER_CARD_JOKERS
_CONTAINS_PAIR = 1 << H.PAIR
_CONTAINS_THREE = 1 << H.THREE_KIND
_CONTAINS_TWO_PAIR = 1 << H.TWO_PAIR
_CONTAINS_STRAIGHT = 1 << H.STRAIGHT
_CONTAINS_FLUSH = 1 << H.FLUSH
_HAND_BASE = H.HAND_BASE


class HandScore(NamedTuple):
    hand_type: int
    chips: int
    mult: int
    score: int
    scoring: tuple[int, ...]   # indices (into the played cards) of the cards that scored


def base_chips_mult(hand_type: int, level: int, flint: bool) -> tuple[int, int]:
    chips, mult, d_chips, d_mult = _HAND_BASE[hand_type]
    chips += (level - 1) * d_chips
    mult += (level - 1) * d_mult
    if flint:
        chips = max(math.floor(chips * 0.5 + 0.5), 0)
        mult = max(math.floor(mult * 0.5 + 0.5), 1)
    return chips, mult


def score_cards(played, jokers, levels, *, debuffed=frozenset(), discards_left: int = 0,
                n_jokers: int | None = None, flint: bool = False, allowed: bool = True,
                evaluated: tuple | None = None) -> HandScore:
    """Score `played` (card ids in play order) with `jokers` (ids, left to right).

    `levels[t]` is the level of hand type t; `debuffed` holds debuffed card ids;
    `n_jokers` is the number of jokers owned (Abstract Joker; defaults to len(jokers));
    `allowed=False` is a hand a boss forbids (The Psychic, Eye, Mouth): it scores 0.
    """
    hand_type, scoring, contains = evaluated if evaluated is not None else H.evaluate(played)
    if not allowed:
        return HandScore(hand_type, 0, 0, 0, scoring)
    chips, mult, d_chips, d_mult = _HAND_BASE[hand_type]
    level = levels[hand_type]
    if level != 1:
        chips += (level - 1) * d_chips
        mult += (level - 1) * d_mult
    if flint:
        chips = max(math.floor(chips * 0.5 + 0.5), 0)
        mult = max(math.floor(mult * 0.5 + 0.5), 1)
    per_card = [j for j in jokers if j in _PER_CARD_SET]
    for i in scoring:
        card = played[i]
        if card in debuffed:
            continue
        chips += CARD_CHIPS[card]
        for j in per_card:
            c, m = _PER_CARD[j][card]
            chips += c
            mult += m
    if n_jokers is None:
        n_jokers = len(jokers)
    for j in jokers:
        if j == J.JOKER:
            mult += 4
        elif j == J.JOLLY:
            if contains & _CONTAINS_PAIR:
                mult += 8
        elif j == J.ZANY:
            if contains & _CONTAINS_THREE:
                mult += 12
        elif j == J.MAD:
            if contains & _CONTAINS_TWO_PAIR:
                mult += 10
        elif j == J.CRAZY:
            if contains & _CONTAINS_STRAIGHT:
                mult += 12
        elif j == J.DROLL:
            if contains & _CONTAINS_FLUSH:
                mult += 10
        elif j == J.SLY:
            if contains & _CONTAINS_PAIR:
                chips += 50
        elif j == J.WILY:
            if contains & _CONTAINS_THREE:
                chips += 100
        elif j == J.CLEVER:
            if contains & _CONTAINS_TWO_PAIR:
                chips += 80
        elif j == J.DEVIOUS:
            if contains & _CONTAINS_STRAIGHT:
                chips += 100
        elif j == J.CRAFTY:
            if contains & _CONTAINS_FLUSH:
                chips += 80
        elif j == J.HALF:
            if len(played) <= 3:
                mult += 20
        elif j == J.BANNER:
            chips += 30 * discards_left
        elif j == J.MYSTIC_SUMMIT:
            if discards_left == 0:
                mult += 15
        elif j == J.ABSTRACT:
            mult += 3 * n_jokers
        elif j == J.GROS_MICHEL:
            mult += 15
        elif j == J.THE_DUO:
            if contains & _CONTAINS_PAIR:
                mult *= 2
    return HandScore(hand_type, chips, mult, math.floor(chips * mult), scoring)
