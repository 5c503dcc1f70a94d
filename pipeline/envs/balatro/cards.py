"""Playing cards as integer ids, stable across processes.

A card id is `rank * 4 + suit` with `rank` 0..12 for 2..A and `suit` 0..3 for
Diamonds, Clubs, Hearts, Spades. Sorting ids in descending order therefore sorts by rank
descending (the game's default "sort by rank"), then Spades > Hearts > Clubs > Diamonds
within a rank (our fixed tie-break), so two hands holding the same cards always look the
same.
"""
from __future__ import annotations

N_CARDS = 52
N_RANKS = 13
N_SUITS = 4

RANK_NAMES = ("2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A")
RANK_WORDS = ("Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
              "Jack", "Queen", "King", "Ace")
SUIT_NAMES = ("Diamonds", "Clubs", "Hearts", "Spades")
SUIT_SYMBOLS = ("♦", "♣", "♥", "♠")
DIAMONDS, CLUBS, HEARTS, SPADES = 0, 1, 2, 3

RANK_JACK, RANK_QUEEN, RANK_KING, RANK_ACE = 9, 10, 11, 12


def card_id(rank: int, suit: int) -> int:
    return rank * 4 + suit


def rank_of(card: int) -> int:
    return card >> 2


def suit_of(card: int) -> int:
    return card & 3


# Card chips (reference section 2): 2-10 face value, J/Q/K 10, A 11.
CARD_CHIPS = tuple(min(r + 2, 10) if r < RANK_ACE else 11 for r in range(N_RANKS) for _ in range(4))
IS_FACE = tuple(RANK_JACK <= (c >> 2) <= RANK_KING for c in range(N_CARDS))


def card_name(card: int) -> str:
    """Short name such as 'K♠' or '10♥'."""
    return RANK_NAMES[card >> 2] + SUIT_SYMBOLS[card & 3]


def card_long_name(card: int) -> str:
    return f"{RANK_WORDS[card >> 2]} of {SUIT_NAMES[card & 3]}"


_RANK_ALIASES = {name.lower(): i for i, name in enumerate(RANK_NAMES)}
_RANK_ALIASES.update({"t": 8, "1": 12})


def parse_card(text: str) -> int | None:
    """'K♠', 'Ks', '10h', 'K of Spades' -> card id; None if not a card name."""
    t = text.strip().lower().replace(" of ", "")
    suit_map = {"♦": 0, "d": 0, "diamonds": 0, "♣": 1, "c": 1, "clubs": 1,
                "♥": 2, "h": 2, "hearts": 2, "♠": 3, "s": 3, "spades": 3}
    for word, r in ((w.lower(), i) for i, w in enumerate(RANK_WORDS)):
        if t.startswith(word):
            rest = t[len(word):]
            return r * 4 + suit_map[rest] if rest in suit_map else None
    for length in (2, 1):
        head, rest = t[:length], t[length:]
        if head in _RANK_ALIASES and rest in suit_map:
            return _RANK_ALIASES[head] * 4 + suit_map[rest]
    return None
