"""The Balatro rules engine: one run (or one blind) as a plain-Python state machine.

`BalatroGame` knows nothing about gymnasium; `pipeline.envs.balatro.env` maps actions,
observations and rewards onto it. All randomness comes from one `numpy.random.Generator`
(`self.rng`), so a seed and a sequence of calls fully determine a run, and
`state_dict()` / `load_state_dict()` capture everything (RNG state included) as plain
Python values.

Phases: blind selection -> play (the round) -> shop -> blind selection ... -> game over.
Rules sources: /work/shared/reference/balatro_rules.md (hands, money, targets, jokers,
shop prices); VR = nh6574/VanillaRemade src/blinds.lua (boss effects) and src/tags.lua
(skip tags). Simplifications are listed in the env module docstring.
"""
from __future__ import annotations

import numpy as np

from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.cards import IS_FACE, N_CARDS
from pipeline.envs.balatro.scoring import HandScore, score_cards

PHASE_BLIND_SELECT, PHASE_PLAY, PHASE_SHOP, PHASE_OVER = range(4)
PHASE_NAMES = ("blind_select", "play", "shop", "game_over")
MAX_HAND = 8          # hand positions addressable by the action space
MAX_JOKERS = 5        # joker slots (reference section 3)
MAX_PLAY = 5          # cards per play or discard
BASE_HANDS, BASE_DISCARDS, BASE_HAND_SIZE = 4, 3, 8
START_MONEY = 4
INTEREST_CAP = 5

_ALL_CARDS = frozenset(range(N_CARDS))
_FACE_CARDS = frozenset(c for c in range(N_CARDS) if IS_FACE[c])
_SUIT_CARDS = tuple(frozenset(c for c in range(N_CARDS) if c & 3 == s) for s in range(4))
_EMPTY = frozenset()


class BalatroGame:
    """A run of Balatro (`mode="run"`) or a single blind (`mode="blind"`)."""

    def __init__(self, *, mode: str = "run", stake: int = 0, deck: str = "red",
                 start_ante: int = 1, blind: int = B.SMALL, endless: bool = False) -> None:
        self.mode = mode
        self.stake = stake
        self.deck_name = deck
        self.start_ante = start_ante
        self.start_blind = blind
        self.endless = endless
        d_hands, d_discards, d_money, _ = B.DECKS[deck]
        self.round_hands = BASE_HANDS + d_hands
        # Blue Stake and above: -1 discard (the stake ladder is cumulative).
        self.round_discards = BASE_DISCARDS + d_discards - (1 if stake >= 4 else 0)
        self.start_money = START_MONEY + d_money
        self.rng = np.random.default_rng(0)
        self.new_game(0)

    # ----------------------------------------------------------------- setup
    def new_game(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.ante = self.start_ante
        self.blind_idx = B.SMALL if self.mode == "run" else self.start_blind
        self.round = (self.start_ante - 1) * 3
        self.phase = PHASE_BLIND_SELECT
        self.money = self.start_money
        self.levels = [1] * H.N_HAND_TYPES
        self.played_counts = [0] * H.N_HAND_TYPES
        self.jokers: list[int] = []
        self.joker_sell: list[int] = []
        self.bosses_used = [0] * B.N_BOSSES
        self.boss = 0
        self.tags = [0, 0]              # tags offered for skipping Small / Big
        self.pending_tags: list[int] = []
        self.skips = 0
        self.hands_played_run = 0
        self.unused_discards_run = 0
        self.won = False
        self.lost = False
        self.shop: list[list[int]] = [[S.SLOT_EMPTY, 0, 0] for _ in range(S.N_SHOP_SLOTS)]
        self.reroll_cost = S.REROLL_BASE
        self.played_this_ante: set[int] = set()
        self._reset_round_state()
        self._new_ante()
        # Both modes open inside a blind: a run always starts with its first Small Blind, so
        # it is selected automatically (every later Small/Big blind offers select or skip).
        # The reset state then has the same legal actions in both modes.
        self.round = (self.ante - 1) * 3 + (self.blind_idx if self.mode == "blind" else 0)
        self.select_blind()

    def _reset_round_state(self) -> None:
        self.target = 0
        self.score = 0
        self.hands_left = 0
        self.discards_left = 0
        self.discards_used = 0
        self.hands_played_round = 0
        self.hand_size = BASE_HAND_SIZE
        self.deck: list[int] = []
        self.hand: list[int] = []
        self.discard_pile: list[int] = []
        self.played_pile: list[int] = []
        self.face_down: set[int] = set()
        self.forced = -1                  # Cerulean Bell: card id forced into every selection
        self.disabled_joker = -1          # Crimson Heart: index of the disabled joker
        self.fish_prepped = False
        self.verdant = False
        self.round_types: list[int] = []  # hand types played this round (The Eye, The Mouth)
        self.most_played = H.HIGH_CARD    # The Ox
        self.boss_active = -1             # boss in effect this round, -1 for none
        self.debuffed: frozenset[int] | set[int] = _EMPTY

    def _new_ante(self) -> None:
        """Draw the ante's boss and the two skip tags (the game decides both at ante start)."""
        self.boss = self._pick_boss()
        pool = B.tag_pool(self.ante)
        rolls = self.rng.random(2)
        self.tags = [pool[int(r * len(pool))] for r in rolls]
        self.played_this_ante = set()

    def _pick_boss(self, exclude: int = -1) -> int:
        # The game's get_new_boss: among eligible bosses, the least used so far, uniformly.
        pool = [b for b in B.boss_pool(self.ante) if b != exclude] or list(B.boss_pool(self.ante))
        least = min(self.bosses_used[b] for b in pool)
        pool = [b for b in pool if self.bosses_used[b] == least]
        boss = pool[int(self.rng.random() * len(pool))]
        self.bosses_used[boss] += 1
        return boss

    # ----------------------------------------------------------------- round
    def _start_round(self) -> None:
        self._reset_round_state()
        self.phase = PHASE_PLAY
        kind = self.blind_idx
        boss = self.boss if kind == B.BOSS else -1
        self.boss_active = boss
        self.target = B.blind_target(self.ante, kind, self.boss, self.stake)
        self.hands_left = self.round_hands
        self.discards_left = self.round_discards
        if boss == B.WATER:
            self.discards_left = 0
        elif boss == B.NEEDLE:
            self.hands_left = 1
        elif boss == B.MANACLE:
            self.hand_size = BASE_HAND_SIZE - 1
        elif boss == B.AMBER_ACORN and len(self.jokers) > 1:
            order = self.rng.permutation(len(self.jokers)).tolist()
            self.jokers = [self.jokers[i] for i in order]
            self.joker_sell = [self.joker_sell[i] for i in order]
        elif boss == B.VERDANT_LEAF:
            self.verdant = True
        elif boss == B.OX:
            best = max(self.played_counts)
            self.most_played = self.played_counts.index(best)
        self._update_debuffed()
        self.deck = self.rng.permutation(N_CARDS).tolist()
        self._draw(self.hand_size)

    def _update_debuffed(self) -> None:
        boss = self.boss_active
        if boss < 0:
            self.debuffed = _EMPTY
        elif self.verdant:
            self.debuffed = _ALL_CARDS
        elif boss in B.BOSS_DEBUFF_SUIT:
            self.debuffed = _SUIT_CARDS[B.BOSS_DEBUFF_SUIT[boss]]
        elif boss == B.PLANT:
            self.debuffed = _FACE_CARDS
        elif boss == B.PILLAR:
            self.debuffed = self.played_this_ante
        else:
            self.debuffed = _EMPTY

    def _draw(self, n: int) -> None:
        n = min(n, len(self.deck), MAX_HAND - len(self.hand))
        boss = self.boss_active
        deck, hand = self.deck, self.hand
        if boss < 0 or boss not in (B.HOUSE, B.WHEEL, B.FISH, B.MARK):
            for _ in range(n):
                hand.append(deck.pop())
        else:
            first = self.hands_played_round == 0 and self.discards_used == 0
            for _ in range(n):
                c = deck.pop()
                hand.append(c)
                if ((boss == B.HOUSE and first) or (boss == B.FISH and self.fish_prepped)
                        or (boss == B.MARK and IS_FACE[c])
                        or (boss == B.WHEEL and self.rng.random() < 1 / 7)):
                    self.face_down.add(c)
            self.fish_prepped = False
        hand.sort(reverse=True)
        if boss == B.CERULEAN_BELL and hand and self.forced not in hand:
            self.forced = hand[int(self.rng.random() * len(hand))]

    def _remove_from_hand(self, positions) -> list[int]:
        hand = self.hand
        cards = [hand[i] for i in positions]
        if len(positions) == 1:
            del hand[positions[0]]
        else:
            for i in sorted(positions, reverse=True):
                del hand[i]
        if self.face_down:
            for c in cards:
                self.face_down.discard(c)
        if self.forced in cards:
            self.forced = -1
        return cards

    def active_jokers(self) -> list[int]:
        if self.disabled_joker < 0:
            return self.jokers
        return [j for i, j in enumerate(self.jokers) if i != self.disabled_joker]

    def hand_allowed(self, hand_type: int, n_cards: int) -> bool:
        """False when the boss forbids this play (it then scores nothing)."""
        boss = self.boss_active
        if boss == B.PSYCHIC:
            return n_cards >= 5
        if boss == B.EYE:
            return hand_type not in self.round_types
        if boss == B.MOUTH:
            return not self.round_types or self.round_types[0] == hand_type
        return True

    def preview(self, positions) -> HandScore:
        """What playing these hand positions would score now (no state change; ignores the
        random cards The Hook would discard, which never score anyway)."""
        cards = [self.hand[i] for i in positions]
        evaluated = H.evaluate(cards)
        hand_type = evaluated[0]
        levels = self.levels
        if self.boss_active == B.ARM and levels[hand_type] > 1:
            levels = list(levels)
            levels[hand_type] -= 1
        return score_cards(cards, self.active_jokers(), levels, debuffed=self.debuffed,
                           discards_left=self.discards_left, n_jokers=len(self.jokers),
                           flint=self.boss_active == B.FLINT,
                           allowed=self.hand_allowed(hand_type, len(cards)), evaluated=evaluated)

    def play(self, positions) -> tuple[HandScore, bool]:
        """Play the cards at `positions` (sorted hand indices). Returns (score, blind beaten)."""
        cards = self._remove_from_hand(positions)
        self.hands_left -= 1
        self.hands_played_round += 1
        self.hands_played_run += 1
        boss = self.boss_active
        if boss >= 0:
            if boss == B.HOOK and self.hand:
                # VR blinds.lua: on press_play, 2 random cards of the remaining hand are discarded.
                for _ in range(min(2, len(self.hand))):
                    i = int(self.rng.random() * len(self.hand))
                    self.discard_pile.append(self.hand.pop(i))
                    self.face_down.discard(self.discard_pile[-1])
                    if self.forced == self.discard_pile[-1]:
                        self.forced = -1
            elif boss == B.TOOTH:
                self.money -= len(cards)
            elif boss == B.FISH:
                self.fish_prepped = True
        evaluated = H.evaluate(cards)
        hand_type = evaluated[0]
        allowed = self.hand_allowed(hand_type, len(cards))
        self.played_counts[hand_type] += 1
        if allowed:
            if boss == B.ARM and self.levels[hand_type] > 1:
                self.levels[hand_type] -= 1
            elif boss == B.OX and hand_type == self.most_played:
                self.money = 0
            self.round_types.append(hand_type)
        result = score_cards(cards, self.active_jokers(), self.levels, debuffed=self.debuffed,
                             discards_left=self.discards_left, n_jokers=len(self.jokers),
                             flint=boss == B.FLINT, allowed=allowed, evaluated=evaluated)
        self.score += result.score
        self.played_pile.extend(cards)
        self.played_this_ante.update(cards)   # The Pillar debuffs these for the rest of the ante
        if self.score >= self.target:
            self._end_round()
            return result, True
        if self.hands_left <= 0:
            self.phase = PHASE_OVER
            self.lost = True
            return result, False
        if boss == B.CRIMSON_HEART and self.jokers:
            self._crimson_pick()
        self._draw(3 if boss == B.SERPENT else self.hand_size - len(self.hand))
        return result, False

    def _crimson_pick(self) -> None:
        # VR blinds.lua: after a hand, a random joker other than the last one is disabled.
        prev = self.disabled_joker
        pool = [i for i in range(len(self.jokers)) if i != prev] or list(range(len(self.jokers)))
        self.disabled_joker = pool[int(self.rng.random() * len(pool))]

    def discard(self, positions) -> None:
        cards = self._remove_from_hand(positions)
        self.discard_pile.extend(cards)
        self.discards_left -= 1
        self.discards_used += 1
        self._draw(3 if self.boss_active == B.SERPENT else self.hand_size - len(self.hand))

    def _end_round(self) -> None:
        """Blind beaten: cash out (reward, unused hands, interest), then shop or the end."""
        kind = self.blind_idx
        money = self.money
        if kind == B.BOSS:
            reward = B.SHOWDOWN_REWARD if B.BOSS_SHOWDOWN[self.boss] else B.BLIND_REWARD[B.BOSS]
        elif kind == B.SMALL and self.stake >= 1:
            reward = 0   # Red Stake and up: the Small Blind pays nothing
        else:
            reward = B.BLIND_REWARD[kind]
        if self.deck_name == "green":
            bonus = 2 * self.hands_left + self.discards_left
            interest = 0
        else:
            bonus = self.hands_left
            interest = min(max(money, 0) // 5, INTEREST_CAP)
        self.unused_discards_run += self.discards_left
        self.money = money + reward + bonus + interest
        if kind == B.BOSS:
            n_inv = self.pending_tags.count(B.TAG_INVESTMENT)
            if n_inv:
                self.money += 25 * n_inv
                self.pending_tags = [t for t in self.pending_tags if t != B.TAG_INVESTMENT]
        # Gros Michel: 1 in 6 chance to be destroyed at end of round (game RNG).
        if J.GROS_MICHEL in self.jokers:
            for i in range(len(self.jokers) - 1, -1, -1):
                if self.jokers[i] == J.GROS_MICHEL and self.rng.random() < 1 / J.GROS_MICHEL_ODDS:
                    del self.jokers[i]
                    del self.joker_sell[i]
        self.disabled_joker = -1
        self.return_cards()
        if self.mode == "blind":
            self.won = True
            self.phase = PHASE_OVER
            return
        if kind == B.BOSS:
            if self.ante == B.WIN_ANTE and not self.won:
                self.won = True
                if not self.endless:
                    self.phase = PHASE_OVER
                    return
            self.ante += 1
            self.blind_idx = B.SMALL
            self._new_ante()
        else:
            self.blind_idx = kind + 1
        self._open_shop()

    def return_cards(self) -> None:
        """End of round: every card goes back to the deck (reshuffled at the next round)."""
        self.deck = self.deck + self.hand + self.discard_pile + self.played_pile
        self.hand, self.discard_pile, self.played_pile = [], [], []
        self.face_down = set()
        self.forced = -1
        self.boss_active = -1
        self.verdant = False
        self.debuffed = _EMPTY

    # ----------------------------------------------------------------- blinds
    def select_blind(self) -> None:
        self.round += 1
        self._start_round()

    def skip_blind(self) -> None:
        """Skip the Small or Big blind and take its tag (VR tags.lua)."""
        tag = self.tags[self.blind_idx]
        self.skips += 1
        self.blind_idx += 1
        self._gain_tag(tag)
        if B.TAG_DOUBLE in self.pending_tags and tag != B.TAG_DOUBLE:
            self.pending_tags.remove(B.TAG_DOUBLE)
            self._gain_tag(tag)

    def _gain_tag(self, tag: int) -> None:
        if tag == B.TAG_HANDY:
            self.money += self.hands_played_run
        elif tag == B.TAG_GARBAGE:
            self.money += self.unused_discards_run
        elif tag == B.TAG_SPEED:
            self.money += 5 * self.skips
        elif tag == B.TAG_ECONOMY:
            self.money += min(40, max(0, self.money))
        elif tag == B.TAG_ORBITAL:
            pool = [t for t in range(H.N_HAND_TYPES)
                    if t not in H.SECRET_HANDS or self.played_counts[t] > 0]
            self.levels[pool[int(self.rng.random() * len(pool))]] += 3
        elif tag == B.TAG_TOP_UP:
            for _ in range(2):
                if len(self.jokers) < MAX_JOKERS:
                    r = self.rng.random()
                    j = S.pick_joker(0.0, r, self.jokers, rarity=J.COMMON)
                    self.jokers.append(j)
                    self.joker_sell.append(J.sell_value(J.JOKER_COSTS[j]))
        elif tag == B.TAG_BOSS:
            self.bosses_used[self.boss] -= 1
            self.boss = self._pick_boss(exclude=self.boss)
        else:   # Uncommon, Coupon, D6 (next shop), Investment (next boss), Double (next tag)
            self.pending_tags.append(tag)

    # ----------------------------------------------------------------- shop
    def _open_shop(self) -> None:
        self.phase = PHASE_SHOP
        self.reroll_cost = S.REROLL_BASE
        if B.TAG_D6 in self.pending_tags:
            self.pending_tags.remove(B.TAG_D6)
            self.reroll_cost = 0
        self._fill_shop()
        if B.TAG_UNCOMMON in self.pending_tags:
            self.pending_tags.remove(B.TAG_UNCOMMON)
            j = S.pick_joker(0.0, self.rng.random(), self._shop_exclude(0), rarity=J.UNCOMMON)
            self.shop[0] = [S.SLOT_JOKER, j, 0]
        if B.TAG_COUPON in self.pending_tags:
            self.pending_tags.remove(B.TAG_COUPON)
            for slot in self.shop:
                slot[2] = 0

    def _shop_exclude(self, slot_index: int) -> set[int]:
        ex = set(self.jokers)
        for i, (kind, item, _) in enumerate(self.shop):
            if i != slot_index and kind == S.SLOT_JOKER:
                ex.add(item)
        return ex

    def _fill_shop(self) -> None:
        rolls = self.rng.random(3 * S.N_SHOP_SLOTS).tolist()
        self.shop = [[S.SLOT_EMPTY, 0, 0] for _ in range(S.N_SHOP_SLOTS)]
        for i in range(S.N_SHOP_SLOTS):
            kind_roll, r1, r2 = rolls[3 * i: 3 * i + 3]
            if kind_roll * (S.JOKER_WEIGHT + S.PLANET_WEIGHT) < S.JOKER_WEIGHT:
                j = S.pick_joker(r1, r2, self._shop_exclude(i))
                self.shop[i] = [S.SLOT_JOKER, j, J.JOKER_COSTS[j]]
            else:
                self.shop[i] = [S.SLOT_PLANET, S.pick_planet(r1, self.played_counts), S.PLANET_COST]

    def can_buy(self, slot: int) -> bool:
        kind, _, price = self.shop[slot]
        if kind == S.SLOT_EMPTY or price > self.money:
            return False
        return kind == S.SLOT_PLANET or len(self.jokers) < MAX_JOKERS

    def buy(self, slot: int) -> None:
        kind, item, price = self.shop[slot]
        self.money -= price
        if kind == S.SLOT_JOKER:
            self.jokers.append(item)
            self.joker_sell.append(J.sell_value(price))
        else:
            self.levels[item] += 1
        self.shop[slot] = [S.SLOT_EMPTY, 0, 0]

    def sell(self, index: int) -> None:
        self.money += self.joker_sell[index]
        del self.jokers[index]
        del self.joker_sell[index]
        if self.disabled_joker >= 0:
            if index == self.disabled_joker:
                self.disabled_joker = -1
            elif index < self.disabled_joker:
                self.disabled_joker -= 1
        if self.verdant:
            # VR blinds.lua: selling a joker disables Verdant Leaf.
            self.verdant = False
            self._update_debuffed()

    def reroll(self) -> None:
        self.money -= self.reroll_cost
        self.reroll_cost += 1
        self._fill_shop()

    def leave_shop(self) -> None:
        self.phase = PHASE_BLIND_SELECT

    def shown_target(self) -> int:
        """The target of the blind being played (or just lost/won); while choosing a blind
        or shopping, the target of the next blind."""
        if self.phase in (PHASE_PLAY, PHASE_OVER):
            return self.target
        return B.blind_target(self.ante, self.blind_idx, self.boss, self.stake)

    # ----------------------------------------------------------------- state
    def card_counts(self) -> int:
        return len(self.deck) + len(self.hand) + len(self.discard_pile) + len(self.played_pile)

    _FIELDS = ("mode", "stake", "deck_name", "start_ante", "start_blind", "endless",
               "round_hands", "round_discards", "start_money", "ante", "blind_idx", "round",
               "phase", "money", "levels", "played_counts", "jokers", "joker_sell",
               "bosses_used", "boss", "tags", "pending_tags", "skips", "hands_played_run",
               "unused_discards_run", "won", "lost", "shop", "reroll_cost", "target", "score",
               "hands_left", "discards_left", "discards_used", "hands_played_round",
               "hand_size", "deck", "hand", "discard_pile", "played_pile", "forced",
               "disabled_joker", "fish_prepped", "verdant", "round_types",
               "most_played", "boss_active")
    _SETS = ("played_this_ante", "face_down")

    def state_dict(self) -> dict:
        state: dict = {}
        for name in self._FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = [list(v) if isinstance(v, list) else v for v in value]
            state[name] = value
        for name in self._SETS:
            state[name] = sorted(getattr(self, name))
        state["rng"] = _plain(self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict) -> None:
        for name in self._FIELDS:
            value = state[name]
            if isinstance(value, list):
                value = [list(v) if isinstance(v, list) else v for v in value]
            setattr(self, name, value)
        for name in self._SETS:
            setattr(self, name, set(state[name]))
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self._update_debuffed()


def _plain(value):
    """Numpy RNG state -> plain Python (ints stay ints; nested dicts copied)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value
