"""A numpy-only RGB picture of the table: jokers, hand, progress, money.

Cards are white rectangles with a suit-coloured band and the rank drawn as a 3x5 block
glyph; face-down cards are blue backs; debuffed cards are greyed. No PIL needed.
"""
from __future__ import annotations

import numpy as np

from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro.game import MAX_HAND, MAX_JOKERS, PHASE_SHOP, BalatroGame
from pipeline.envs.balatro.shop import N_SHOP_SLOTS, SLOT_EMPTY, SLOT_JOKER

HEIGHT, WIDTH = 200, 400
TABLE = (34, 94, 64)
SUIT_COLOURS = np.array([(230, 120, 20), (30, 60, 150), (200, 30, 40), (30, 30, 30)], dtype=np.uint8)
# 3x5 glyphs, rows top to bottom, '#' = ink.
_GLYPHS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    "J": ("..#", "..#", "..#", "#.#", "###"), "Q": ("###", "#.#", "#.#", "###", "..#"),
    "K": ("#.#", "##.", "#..", "##.", "#.#"), "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "$": (".##", "##.", ".#.", ".##", "##."),
}
_GLYPH_ARRAYS = {k: np.array([[ch == "#" for ch in row] for row in v]) for k, v in _GLYPHS.items()}
_RANK_TEXT = ("2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A")
_JOKER_COLOURS = np.array([((37 * j) % 200 + 40, (91 * j) % 200 + 40, (53 * j) % 200 + 40)
                           for j in range(J.N_JOKERS)], dtype=np.uint8)


def _text(img: np.ndarray, x: int, y: int, text: str, colour, scale: int = 2) -> None:
    for ch in text:
        glyph = _GLYPH_ARRAYS.get(ch)
        if glyph is not None:
            block = np.kron(glyph, np.ones((scale, scale), dtype=bool))
            h, w = block.shape
            img[y:y + h, x:x + w][block] = colour
        x += 4 * scale


def draw(game: BalatroGame) -> np.ndarray:
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = TABLE
    # Jokers along the top.
    for i in range(MAX_JOKERS):
        x = 10 + i * 48
        if i < len(game.jokers):
            img[8:48, x:x + 40] = _JOKER_COLOURS[game.jokers[i]]
            if i == game.disabled_joker:
                img[8:48, x:x + 40] //= 3
        else:
            img[8:48, x:x + 40] = (24, 70, 48)
    # Shop slots on the right while shopping.
    if game.phase == PHASE_SHOP:
        for i in range(N_SHOP_SLOTS):
            kind, item, _ = game.shop[i]
            x = 270 + i * 60
            if kind == SLOT_EMPTY:
                continue
            colour = _JOKER_COLOURS[item] if kind == SLOT_JOKER else (90, 160, 220)
            img[8:48, x:x + 40] = colour
    # The hand.
    for i in range(MAX_HAND):
        x, y = 10 + i * 48, 62
        if i >= len(game.hand):
            img[y:y + 60, x:x + 40] = (24, 70, 48)
            continue
        card = game.hand[i]
        if card in game.face_down:
            img[y:y + 60, x:x + 40] = (40, 70, 170)
            continue
        img[y:y + 60, x:x + 40] = 245
        img[y + 48:y + 60, x:x + 40] = SUIT_COLOURS[card & 3]
        text = _RANK_TEXT[card >> 2]
        _text(img, x + 4, y + 6, text, SUIT_COLOURS[card & 3], scale=3 if len(text) == 1 else 2)
        if card in game.debuffed:
            img[y:y + 60, x:x + 40] //= 2
        if card == game.forced:
            img[y - 4:y, x:x + 40] = (0, 160, 250)
    # Score progress bar, hands (blue) and discards (red) pips, money.
    frac = min(game.score / game.target, 1.0) if game.target else 0.0
    img[136:148, 10:390] = (20, 50, 35)
    img[136:148, 10:10 + int(380 * frac)] = (240, 200, 40)
    for k in range(max(game.hands_left, 0)):
        img[156:168, 10 + k * 16:22 + k * 16] = (40, 100, 220)
    for k in range(max(game.discards_left, 0)):
        img[156:168, 120 + k * 16:132 + k * 16] = (210, 50, 50)
    _text(img, 240, 156, "$" + str(max(game.money, 0)), (250, 210, 60), scale=2)
    _text(img, 330, 156, str(game.ante), (250, 250, 250), scale=2)
    return img
