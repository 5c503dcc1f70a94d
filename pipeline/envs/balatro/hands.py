"""Poker hand detection with Balatro's rules (reference section 1-2; VR src/pokerhands.lua).

`evaluate(cards)` returns the hand type, which of the played cards score, and the set of
hand types the play "contains" (as a bit mask), which is what jokers such as Jolly test.
Containment follows the game's parts: `_2` are ranks held at least twice, so a Full
House contains a Pair, Two Pair and Three of a Kind, while Four of a Kind contains a
Pair and Three of a Kind but not Two Pair (one rank only).
"""
from __future__ import annotations

import functools

HIGH_CARD, PAIR, TWO_PAIR, THREE_KIND, STRAIGHT, FLUSH, FULL_HOUSE, FOUR_KIND, \
    STRAIGHT_FLUSH, FIVE_KIND, FLUSH_HOUSE, FLUSH_FIVE = range(12)
N_HAND_TYPES = 12

HAND_NAMES = ("High Card", "Pair", "Two Pair", "Three of a Kind", "Straight", "Flush",
              "Full House", "Four of a Kind", "Straight Flush", "Five of a Kind",
              "Flush House", "Flush Five")
PLANET_NAMES = ("Pluto", "Mercury", "Uranus", "Venus", "Saturn", "Jupiter", "Earth", "Mars",
                "Neptune", "Planet X", "Ceres", "Eris")
# (chips, mult, +chips per level, +mult per level); reference section 1.
HAND_BASE = (
    (5, 1, 10, 1),
    (10, 2, 15, 1),
    (20, 2, 20, 1),
    (30, 3, 20, 2),
    (30, 4, 30, 3),
    (35, 4, 15, 2),
    (40, 4, 25, 2),
    (60, 7, 30, 3),
    (100, 8, 40, 4),
    (120, 12, 35, 3),
    (140, 14, 40, 4),
    (160, 16, 50, 3),
)
# The three hands that need duplicated cards; their planets only appear once played.
SECRET_HANDS = (FIVE_KIND, FLUSH_HOUSE, FLUSH_FIVE)


def hand_chips_mult(hand_type: int, level: int) -> tuple[int, int]:
    """Base chips and mult of a hand type at `level` (level N = base + (N-1) x increment)."""
    chips, mult, d_chips, d_mult = HAND_BASE[hand_type]
    return chips + (level - 1) * d_chips, mult + (level - 1) * d_mult


def _bit(*types: int) -> int:
    m = 0
    for t in types:
        m |= 1 << t
    return m


def evaluate(cards: list[int] | tuple[int, ...]) -> tuple[int, tuple[int, ...], int]:
    """(hand type, indices of scoring cards in play order, contains-bit-mask) of 1-5 cards."""
    s = cards[0] & 3
    flush = len(cards) == 5 and all(c & 3 == s for c in cards)
    return _evaluate_ranks(tuple([c >> 2 for c in cards]), flush)


@functools.cache
def _evaluate_ranks(ranks: tuple[int, ...], flush: bool) -> tuple[int, tuple[int, ...], int]:
    # Memoised on (ranks in play order, flush): hands are sorted, so few distinct keys occur.
    n = len(ranks)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(ranks):
        groups.setdefault(r, []).append(i)
    straight = False
    if n == 5 and len(groups) == 5:
        lo, hi = min(groups), max(groups)
        # Ace high (10-J-Q-K-A) or low (A-2-3-4-5); no wrap-around (K-A-2 is not a straight).
        straight = hi - lo == 4 or (hi == 12 and lo == 0 and max(r for r in groups if r != 12) == 3)
    sizes = sorted((len(g) for g in groups.values()), reverse=True)
    top = sizes[0]
    n_pairs = sum(1 for s in sizes if s >= 2)
    contains = 1 << HIGH_CARD
    if top >= 2:
        contains |= 1 << PAIR
    if n_pairs >= 2:
        contains |= 1 << TWO_PAIR
    if top >= 3:
        contains |= 1 << THREE_KIND
        if n_pairs >= 2:
            contains |= 1 << FULL_HOUSE
    if top >= 4:
        contains |= 1 << FOUR_KIND
    if top >= 5:
        contains |= 1 << FIVE_KIND
    if straight:
        contains |= 1 << STRAIGHT
    if flush:
        contains |= 1 << FLUSH
        if straight:
            contains |= 1 << STRAIGHT_FLUSH
        if contains >> FULL_HOUSE & 1:
            contains |= 1 << FLUSH_HOUSE
        if top >= 5:
            contains |= 1 << FLUSH_FIVE
    all_idx = tuple(range(n))
    if flush and top >= 5:
        return FLUSH_FIVE, all_idx, contains
    if flush and contains >> FULL_HOUSE & 1:
        return FLUSH_HOUSE, all_idx, contains
    if top >= 5:
        return FIVE_KIND, all_idx, contains
    if straight and flush:
        return STRAIGHT_FLUSH, all_idx, contains
    if top == 4:
        return FOUR_KIND, _grouped(groups, 4), contains
    if contains >> FULL_HOUSE & 1:
        return FULL_HOUSE, all_idx, contains
    if flush:
        return FLUSH, all_idx, contains
    if straight:
        return STRAIGHT, all_idx, contains
    if top == 3:
        return THREE_KIND, _grouped(groups, 3), contains
    if n_pairs >= 2:
        return TWO_PAIR, _grouped(groups, 2), contains
    if top == 2:
        return PAIR, _grouped(groups, 2), contains
    hi = max(groups)
    return HIGH_CARD, (groups[hi][0],), contains


def _grouped(groups: dict[int, list[int]], min_size: int) -> tuple[int, ...]:
    """Indices (in play order) of every card whose rank appears at least `min_size` times."""
    return tuple(sorted(i for g in groups.values() if len(g) >= min_size for i in g))
