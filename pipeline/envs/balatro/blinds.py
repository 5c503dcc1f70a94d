"""Stakes, decks, blind targets, boss blinds and skip tags, as data.

Sources (cited per table): reference = /work/shared/reference/balatro_rules.md;
VR = nh6574/VanillaRemade (src/blinds.lua, src/tags.lua, src/backs.lua); the game's own
`get_blind_amount` (functions/misc_functions.lua, as quoted by several public mods) for
antes beyond 8.
"""
from __future__ import annotations

import functools
import math

STAKES = ("white", "red", "green", "black", "blue", "purple", "orange", "gold")
# Ante base chips per scaling row (reference section 3).
ANTE_BASE = (
    (300, 800, 2000, 5000, 11000, 20000, 35000, 50000),      # White, Red
    (300, 900, 2600, 8000, 20000, 36000, 60000, 100000),     # Green, Black, Blue
    (300, 1000, 3200, 9000, 25000, 60000, 110000, 200000),   # Purple, Orange, Gold
)


def stake_scaling_row(stake: int) -> int:
    return 0 if stake <= 1 else (1 if stake <= 4 else 2)


def ante_base(ante: int, stake: int) -> int:
    """Base chips of an ante at a stake.

    Antes 1-8 come from the reference table. Beyond 8 (endless) the game's
    get_blind_amount extrapolates: a = base[8], b = 1.6, c = ante - 8, d = 1 + 0.2 c,
    amount = floor(a (b + (0.75 c)^d)^c), then truncated to two significant digits.
    """
    amounts = ANTE_BASE[stake_scaling_row(stake)]
    if ante < 1:
        return 100
    if ante <= 8:
        return amounts[ante - 1]
    c = ante - 8
    d = 1 + 0.2 * c
    amount = math.floor(amounts[7] * (1.6 + (0.75 * c) ** d) ** c)
    return int(amount - amount % (10 ** math.floor(math.log10(amount) - 1)))


# Decks (VR src/backs.lua): (name, +hands, +discards, +starting dollars, effect text).
# Green Deck: no interest; $2 per remaining hand and $1 per remaining discard instead.
DECKS = {
    "red": (0, 1, 0, "+1 discard every round"),
    "blue": (1, 0, 0, "+1 hand every round"),
    "yellow": (0, 0, 10, "start with an extra $10"),
    "green": (0, 0, 0, "no interest; $2 per remaining hand, $1 per remaining discard"),
}
DECK_NAMES = tuple(DECKS)

SMALL, BIG, BOSS = 0, 1, 2
BLIND_KINDS = ("small", "big", "boss")
BLIND_TITLES = ("Small Blind", "Big Blind", "Boss Blind")
BLIND_MULT = (1.0, 1.5)          # reference section 3: 1x, 1.5x; bosses carry their own
BLIND_REWARD = (3, 4, 5)         # reference section 3; showdown bosses pay $8 (VR blinds.lua)
SHOWDOWN_REWARD = 8

# Boss blinds (VR src/blinds.lua): (name, min ante, score multiplier, showdown, effect).
BOSSES: tuple[tuple[str, int, float, bool, str], ...] = (
    ("The Hook", 1, 2, False, "discards 2 random cards from hand each time a hand is played"),
    ("The Ox", 6, 2, False, "playing your most played hand type sets money to $0"),
    ("The House", 2, 2, False, "the first hand is drawn face down"),
    ("The Wall", 2, 4, False, "extra large blind (4x)"),
    ("The Wheel", 2, 2, False, "1 in 7 cards are drawn face down"),
    ("The Arm", 2, 2, False, "decreases the level of the played hand type by 1"),
    ("The Club", 1, 2, False, "all Club cards are debuffed"),
    ("The Fish", 2, 2, False, "cards drawn face down after each hand played"),
    ("The Psychic", 1, 2, False, "must play 5 cards (fewer scores nothing)"),
    ("The Goad", 1, 2, False, "all Spade cards are debuffed"),
    ("The Water", 2, 2, False, "start with 0 discards"),
    ("The Window", 1, 2, False, "all Diamond cards are debuffed"),
    ("The Manacle", 1, 2, False, "-1 hand size"),
    ("The Eye", 3, 2, False, "no repeat hand types this round (a repeat scores nothing)"),
    ("The Mouth", 2, 2, False, "play only 1 hand type this round (others score nothing)"),
    ("The Plant", 4, 2, False, "all face cards are debuffed"),
    ("The Serpent", 5, 2, False, "after a play or discard, always draw exactly 3 cards"),
    ("The Pillar", 1, 2, False, "cards played previously this ante are debuffed"),
    ("The Needle", 2, 1, False, "play only 1 hand"),
    ("The Head", 1, 2, False, "all Heart cards are debuffed"),
    ("The Tooth", 3, 2, False, "lose $1 per card played"),
    ("The Flint", 2, 2, False, "base chips and mult are halved"),
    ("The Mark", 2, 2, False, "all face cards are drawn face down"),
    ("Amber Acorn", 8, 2, True, "shuffles the order of your jokers"),
    ("Verdant Leaf", 8, 2, True, "all cards are debuffed until 1 joker is sold"),
    ("Violet Vessel", 8, 6, True, "very large blind (6x)"),
    ("Crimson Heart", 8, 2, True, "one random joker is disabled after every hand played"),
    ("Cerulean Bell", 8, 2, True, "one card is always forced to be selected"),
)
N_BOSSES = len(BOSSES)
(HOOK, OX, HOUSE, WALL, WHEEL, ARM, CLUB, FISH, PSYCHIC, GOAD, WATER, WINDOW, MANACLE, EYE,
 MOUTH, PLANT, SERPENT, PILLAR, NEEDLE, HEAD, TOOTH, FLINT, MARK, AMBER_ACORN, VERDANT_LEAF,
 VIOLET_VESSEL, CRIMSON_HEART, CERULEAN_BELL) = range(N_BOSSES)
BOSS_NAMES = tuple(b[0] for b in BOSSES)
BOSS_MIN_ANTE = tuple(b[1] for b in BOSSES)
BOSS_MULT = tuple(b[2] for b in BOSSES)
BOSS_SHOWDOWN = tuple(b[3] for b in BOSSES)
BOSS_TEXT = tuple(b[4] for b in BOSSES)
# Suit debuffs of The Club / Goad / Window / Head (suit ids as in cards.py).
BOSS_DEBUFF_SUIT = {CLUB: 1, GOAD: 3, WINDOW: 0, HEAD: 2}
WIN_ANTE = 8


@functools.cache
def boss_pool(ante: int) -> tuple[int, ...]:
    """Bosses that may appear at `ante`: showdown bosses on every 8th ante, else those
    whose minimum ante has been reached (the game's get_new_boss)."""
    if ante >= 2 and ante % WIN_ANTE == 0:
        return tuple(b for b in range(N_BOSSES) if BOSS_SHOWDOWN[b])
    return tuple(b for b in range(N_BOSSES) if not BOSS_SHOWDOWN[b] and BOSS_MIN_ANTE[b] <= ante)


def blind_target(ante: int, kind: int, boss: int, stake: int) -> int:
    mult = BOSS_MULT[boss] if kind == BOSS else BLIND_MULT[kind]
    return int(math.floor(ante_base(ante, stake) * mult))


# Skip tags (VR src/tags.lua): (name, min ante, effect text). A skipped Small or Big
# blind grants the tag shown for it; tags are drawn uniformly from those allowed.
TAGS: tuple[tuple[str, int, str], ...] = (
    ("Uncommon Tag", 1, "the next shop has a free Uncommon joker"),
    ("Investment Tag", 1, "gain $25 after defeating the next Boss Blind"),
    ("Boss Tag", 1, "rerolls the Boss Blind"),
    ("Handy Tag", 2, "gain $1 per hand played this run"),
    ("Garbage Tag", 2, "gain $1 per unused discard this run"),
    ("Coupon Tag", 1, "initial cards in the next shop are free"),
    ("D6 Tag", 1, "rerolls in the next shop start at $0"),
    ("Top-up Tag", 2, "create up to 2 Common jokers (if there is room)"),
    ("Speed Tag", 1, "gain $5 per blind skipped this run"),
    ("Orbital Tag", 2, "upgrade a random poker hand by 3 levels"),
    ("Economy Tag", 1, "doubles your money (max +$40)"),
    ("Double Tag", 1, "gives a copy of the next tag selected"),
)
N_TAGS = len(TAGS)
(TAG_UNCOMMON, TAG_INVESTMENT, TAG_BOSS, TAG_HANDY, TAG_GARBAGE, TAG_COUPON, TAG_D6, TAG_TOP_UP,
 TAG_SPEED, TAG_ORBITAL, TAG_ECONOMY, TAG_DOUBLE) = range(N_TAGS)
TAG_NAMES = tuple(t[0] for t in TAGS)
TAG_MIN_ANTE = tuple(t[1] for t in TAGS)
TAG_TEXT = tuple(t[2] for t in TAGS)


@functools.cache
def tag_pool(ante: int) -> tuple[int, ...]:
    return tuple(t for t in range(N_TAGS) if TAG_MIN_ANTE[t] <= ante)
