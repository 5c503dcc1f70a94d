"""The fixed Discrete action layout shared by every mode and phase.

Subsets of hand positions (0-based, hand sorted by rank descending) are listed in a
canonical order: by size 1..5, then lexicographically (itertools.combinations order), so
subset 0 is (0,), 7 is (7,), 8 is (0, 1), 36 is (0, 1, 2), ..., 217 is (3, 4, 5, 6, 7).
8 + 28 + 56 + 70 + 56 = 218 subsets.

| index      | action                         |
|------------|--------------------------------|
| 0..217     | play subset k                  |
| 218..435   | discard subset k - 218         |
| 436        | select the next blind          |
| 437        | skip the next blind (Small/Big)|
| 438..439   | buy shop slot i                |
| 440..444   | sell joker j                   |
| 445        | reroll the shop                |
| 446        | leave the shop                 |
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from pipeline.envs.balatro.game import MAX_HAND, MAX_JOKERS, MAX_PLAY
from pipeline.envs.balatro.shop import N_SHOP_SLOTS

SUBSETS: tuple[tuple[int, ...], ...] = tuple(
    s for k in range(1, MAX_PLAY + 1) for s in combinations(range(MAX_HAND), k))
N_SUBSETS = len(SUBSETS)                      # 218
SUBSET_INDEX = {s: i for i, s in enumerate(SUBSETS)}

PLAY = 0
DISCARD = PLAY + N_SUBSETS                    # 218
SELECT = DISCARD + N_SUBSETS                  # 436
SKIP = SELECT + 1                             # 437
BUY = SKIP + 1                                # 438
SELL = BUY + N_SHOP_SLOTS                     # 440
REROLL = SELL + MAX_JOKERS                    # 445
LEAVE = REROLL + 1                            # 446
N_ACTIONS = LEAVE + 1                         # 447

SUBSET_MAX = np.array([max(s) for s in SUBSETS], dtype=np.int64)
SUBSET_SIZE = np.array([len(s) for s in SUBSETS], dtype=np.int64)
SUBSET_MEMBER = np.zeros((N_SUBSETS, MAX_HAND), dtype=bool)
for _i, _s in enumerate(SUBSETS):
    SUBSET_MEMBER[_i, list(_s)] = True
# SUBSETS_FITTING[n]: subsets that only use positions < n (a hand of n cards).
SUBSETS_FITTING = tuple(SUBSET_MAX < n for n in range(MAX_HAND + 1))
