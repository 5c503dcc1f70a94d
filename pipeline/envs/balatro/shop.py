"""Shop contents: jokers and Planet cards (reference sections 4-5).

The real shop shows 2 card slots (plus boosters and a voucher, not simulated). A card slot
is a Joker, Tarot or Planet with weights 20 : 4 : 4 (the game's `joker_rate`,
`tarot_rate`, `planet_rate` in game.lua); tarots are not simulated, so a slot is a joker
with probability 20/24 and a Planet with 4/24. Joker rarity is Common 70%, Uncommon 25%,
Rare 5% (the game's rarity roll in get_current_pool); a joker already owned or already in
the shop is not offered again. With this reduced joker table the Uncommon and Rare pools
hold one joker each, so an exhausted pool falls back to the Common pool (the game falls
back to the plain Joker only when every pool is empty). Shop editions and stickers are not
simulated. A Planet card costs $3 and is used at once when bought (levels its hand by 1).
"""
from __future__ import annotations

from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J

N_SHOP_SLOTS = 2
SLOT_EMPTY, SLOT_JOKER, SLOT_PLANET = -1, 0, 1
PLANET_COST = 3
REROLL_BASE = 5
JOKER_WEIGHT, PLANET_WEIGHT = 20, 4
RARITY_CUTS = (0.70, 0.95)   # roll < 0.70 Common, < 0.95 Uncommon, else Rare

_BY_RARITY = {r: tuple(j for j in range(J.N_JOKERS) if J.JOKER_RARITY[j] == r)
              for r in (J.COMMON, J.UNCOMMON, J.RARE)}


def pick_joker(roll_rarity: float, roll_pick: float, exclude: set[int] | list[int],
               rarity: int | None = None) -> int:
    """A joker id from two uniform rolls in [0, 1), skipping `exclude`."""
    if rarity is None:
        rarity = J.COMMON if roll_rarity < RARITY_CUTS[0] else (
            J.UNCOMMON if roll_rarity < RARITY_CUTS[1] else J.RARE)
    pool = [j for j in _BY_RARITY[rarity] if j not in exclude]
    if not pool:
        pool = [j for j in _BY_RARITY[J.COMMON] if j not in exclude] or [J.JOKER]
    return pool[min(int(roll_pick * len(pool)), len(pool) - 1)]


def pick_planet(roll: float, played_counts: list[int]) -> int:
    """A hand type whose Planet is offered: the 9 ordinary hands, plus a secret hand once
    it has been played (the game's `softlock` planets)."""
    pool = [t for t in range(H.N_HAND_TYPES) if t not in H.SECRET_HANDS or played_counts[t] > 0]
    return pool[min(int(roll * len(pool)), len(pool) - 1)]


def slot_text(kind: int, item: int, price: int) -> str:
    if kind == SLOT_JOKER:
        return f"{J.joker_text(item)} ${price}"
    if kind == SLOT_PLANET:
        return f"{H.PLANET_NAMES[item]} (Planet: level up {H.HAND_NAMES[item]}) ${price}"
    return "(empty)"
