"""BalatroEnv: a fast Balatro simulator as a gymnasium env (`pipeline/Balatro-v0`).

Modes
-----
- ``mode="run"``: a full run, antes `start_ante`..8 (Small, Big, Boss blinds, shops
  between them); won after the ante-8 Boss (``endless=True`` keeps going, with the
  game's own extrapolation of blind sizes past ante 8). A run opens inside its first
  Small Blind, selected automatically; every later blind is chosen in the blind-select
  phase (select, or skip a Small/Big blind for its tag). Opening inside a blind gives
  both modes the same first state, and keeps gymnasium's `check_env` (which samples an
  action before calling reset) meaningful.
- ``mode="blind"``: one blind (ante `start_ante`, blind `blind` in small|big|boss; the
  boss is drawn from the pool of that ante); the episode ends when it is beaten (win)
  or hands run out (loss). No shop.

Rules live in game.py (round flow, money, bosses, tags), scoring.py (scoring order and
rounding), jokers.py, blinds.py (stakes, decks, bosses, tags) and shop.py; each cites
its source (the reference tables, nh6574/VanillaRemade, the game's get_blind_amount).

Actions: ``Discrete(447)``, the same layout in every mode and phase
--------------------------------------------------------------------
Hand positions are 0-based into the hand, which is always sorted by rank descending
(then Spades, Hearts, Clubs, Diamonds). The 218 subsets of 1-5 of the 8 positions are
ordered by size, then lexicographically: subset 0 = (0,), ..., 7 = (7,), 8 = (0, 1),
..., 35 = (6, 7), 36 = (0, 1, 2), ..., 217 = (3, 4, 5, 6, 7)
(`pipeline.envs.balatro.actions.SUBSETS`).

- 0..217    play subset k
- 218..435  discard subset k-218 (needs a discard left)
- 436       select the next blind (blind-select phase)
- 437       skip the next blind (Small or Big only; grants its tag)
- 438..439  buy shop slot 0..1 (a Planet is used at once)
- 440..444  sell joker 0..4 (any phase but game over)
- 445       reroll the shop ($5, +$1 per reroll in the same shop)
- 446       leave the shop
Cash-out after a beaten blind is automatic. ``info["action_mask"]`` (bool, 447) marks
the legal actions on every step including reset; an illegal action raises
`pipeline.envs.text.IllegalActionError`. When the episode is over every entry is False.
``env.action_space.sample()`` draws uniformly from the actions legal right now.

Observation: ``Box(0, 1, (556,), float32)``, every feature scaled into [0, 1]
--------------------------------------------------------------------------------
- [0, 168)    8 hand slots x 21: rank one-hot (13: 2..A), suit one-hot (4: D, C, H, S),
              present, face down (rank and suit then hidden), debuffed, forced (Cerulean Bell)
- [168, 185)  visible hand composition: count per rank / 4, count per suit / 8
- [185, 191)  hands left / 5, discards left / 5, min(score / target, 1),
              log10(target) / 10, hand size / 8, cards left in the draw pile / 52
- [191, 196)  min(ante, 8) / 8, min(round, 24) / 24, money clipped to [0, 25] / 25,
              money clipped to [0, 200] / 200, run won
- [196, 199)  blind kind one-hot (small, big, boss) of the current or next blind
- [199, 203)  phase one-hot (blind_select, play, shop, game_over)
- [203, 215)  hand levels: min(level - 1, 10) / 10 per hand type (High Card..Flush Five)
- [215, 227)  hand types already played this round (The Eye, The Mouth)
- [227, 362)  5 joker slots x 27: joker id one-hot (left to right)
- [362, 367)  joker slot disabled (Crimson Heart)
- [367, 445)  2 shop slots x 39: joker id one-hot (27), then Planet hand type one-hot (12)
- [445, 451)  shop price / 10 (2, clipped), slot affordable (2),
              reroll cost / 10 (clipped), reroll affordable
- [451, 480)  the ante's boss one-hot (28, visible from blind select on), boss in effect
- [480, 504)  tag offered for skipping Small (12 one-hot), for skipping Big (12)
- [504, 556)  cards left in the draw pile, by card id (rank * 4 + suit)

Reward (deterministic)
----------------------
``reward="overkill"`` (default): a played hand gives (chips scored) / (target of the
current blind); beating a blind adds +1. Everything else, a game over included, gives 0.
A beaten blind therefore sums to at least 2 (overkill scores more).
``reward="progress"``: the same, but a hand's chips count only up to what the blind still
needed, so every beaten blind sums to exactly 2 and a lost one to less than 1: the return
is 2 x blinds beaten plus the lost blind's progress, i.e. it ranks runs as the round
reached does. Overkill pays most in the early antes (ante 1's target is 300, ante 8's
50,000), so an agent trained on it can prefer big early hands to surviving longer.

info (every step)
-----------------
ante, round (blinds selected so far in the run, the game's round counter, as
BalatroBench counts it; in blind mode the blind's position in a run), blind
("small"/"big"/"boss": the current blind, or the next one while choosing or
shopping), target (of that blind), score (of the current or last round), money,
hands_left, discards_left, jokers (names), phase, won, game (flat floats: ante,
round, score, won, money), action_mask; after a play also
last_hand = {"type", "chips", "mult", "score"}.

Simplifications (documented, deliberate)
----------------------------------------
Jokers are the 27 of the reference table, without editions or stickers; no Tarot,
Spectral, booster packs or vouchers; a bought Planet is used immediately; stake
stickers (Black, Orange, Gold) are not simulated (their blind scaling and Blue's
-1 discard are); the hand never exceeds 8 cards (The Serpent draws up to 8);
Amber Acorn shuffles the jokers without hiding them; The Ox's "most played hand"
breaks ties towards the lower hand type.
"""
from __future__ import annotations

import math
import re
from typing import Any

import gymnasium as gym
import numpy as np

from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.cards import N_CARDS, card_name
from pipeline.envs.balatro.game import (MAX_HAND, MAX_JOKERS, PHASE_BLIND_SELECT, PHASE_NAMES,
                                        PHASE_OVER, PHASE_PLAY, PHASE_SHOP, BalatroGame)
from pipeline.envs.text import IllegalActionError

MODES = ("run", "blind")
REWARDS = ("overkill", "progress")
SLOT_W = 21
O_HAND, O_COUNTS, O_ROUND, O_RUN, O_BLIND, O_PHASE = 0, 168, 185, 191, 196, 199
O_LEVELS, O_TYPES, O_JOKERS, O_JOKER_OFF, O_SHOP, O_SHOP_NUM = 203, 215, 227, 362, 367, 445
O_BOSS, O_TAGS, O_DECK, OBS_DIM = 451, 480, 504, 556
SHOP_W = J.N_JOKERS + H.N_HAND_TYPES

_CARD_FEAT = np.zeros((N_CARDS, SLOT_W), dtype=np.float32)
for _c in range(N_CARDS):
    _CARD_FEAT[_c, _c >> 2] = 1.0
    _CARD_FEAT[_c, 13 + (_c & 3)] = 1.0
    _CARD_FEAT[_c, 17] = 1.0
_FACE_DOWN_ROW = np.zeros(SLOT_W, dtype=np.float32)
_FACE_DOWN_ROW[17] = _FACE_DOWN_ROW[18] = 1.0
_COUNT_SCALE = np.array([0.25] * 13 + [0.125] * 4, dtype=np.float32)
_PLAY_MASKS = A.SUBSETS_FITTING
# Play-phase masks by (hand size, discards left?, jokers owned, forced position).
_PLAY_MASK_CACHE: dict[tuple[int, bool, int, int], np.ndarray] = {}


class LegalDiscrete(gym.spaces.Discrete):
    """`Discrete(n)` whose `sample()` without a mask draws uniformly from the actions legal
    in the env's current state (any action while none is legal), so that random sampling,
    as gymnasium's env checker does, never picks an illegal move."""

    def __init__(self, n: int, legal: np.ndarray) -> None:
        super().__init__(n)
        self.legal = legal

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None and self.legal is not None and self.legal.any():
            mask = self.legal.astype(np.int8)
        return super().sample(mask=mask, probability=probability)


def _check_choice(field: str, value: Any, allowed: tuple[str, ...], noun: str) -> None:
    if value not in allowed:
        raise ValueError(f"env.{field}: {value!r} is not {noun} (expected one of: {', '.join(allowed)})")


class BalatroEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    # agent=dqn with network=auto builds this Q-network (pipeline/agents/balatro_qnet.py).
    q_network = "balatro"

    def __init__(self, *, mode: str = "run", stake: str = "white", deck: str = "red",
                 start_ante: int = 1, blind: str = "small", endless: bool = False,
                 max_steps: int = 2000, render_mode: str | None = "rgb_array",
                 reward: str = "overkill") -> None:
        _check_choice("mode", mode, MODES, "a mode")
        _check_choice("reward", reward, REWARDS, "a reward")
        _check_choice("stake", stake, B.STAKES, "a stake")
        _check_choice("deck", deck, B.DECK_NAMES, "a deck")
        _check_choice("blind", blind, B.BLIND_KINDS, "a blind")
        if render_mode is not None:
            _check_choice("render_mode", render_mode, ("rgb_array",), "a render mode")
        if isinstance(start_ante, bool) or not isinstance(start_ante, (int, np.integer)) \
                or start_ante < 1 or (start_ante > B.WIN_ANTE and not endless):
            raise ValueError(f"env.start_ante: {start_ante!r} is not an ante "
                             f"(expected an integer 1..{B.WIN_ANTE}, or any >= 1 with endless=True)")
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"env.max_steps: {max_steps!r} is not a step limit (expected an integer >= 1)")
        self.mode, self.stake, self.deck = mode, stake, deck
        self.start_ante, self.blind, self.endless = int(start_ante), blind, bool(endless)
        self.max_steps = int(max_steps)
        self.reward = reward
        self.render_mode = render_mode
        self._mask = np.zeros(A.N_ACTIONS, dtype=bool)
        self.action_space = LegalDiscrete(A.N_ACTIONS, self._mask)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(OBS_DIM,), dtype=np.float32)
        self.game = BalatroGame(mode=mode, stake=B.STAKES.index(stake), deck=deck,
                                start_ante=self.start_ante, blind=B.BLIND_KINDS.index(blind),
                                endless=self.endless)
        self._obs = np.zeros(OBS_DIM, dtype=np.float32)
        self._hand_view = self._obs[O_HAND:O_HAND + MAX_HAND * SLOT_W].reshape(MAX_HAND, SLOT_W)
        self._deck_view = self._obs[O_DECK:O_DECK + N_CARDS]
        self._steps = 0
        self._last_hand: dict[str, Any] | None = None

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # One game RNG, seeded from gymnasium's np_random (itself seeded by `seed`).
        self.game.new_game(int(self.np_random.integers(2**63 - 1)))
        self._steps = 0
        self._last_hand = None
        return self._observe()

    def step(self, action):
        a = int(action)
        if not (0 <= a < A.N_ACTIONS) or not self._mask[a]:
            raise IllegalActionError(self._illegal_message(a))
        g = self.game
        reward = 0.0
        self._last_hand = None
        if a < A.SELECT:
            positions = A.SUBSETS[a if a < A.DISCARD else a - A.DISCARD]
            if a < A.DISCARD:
                target, needed = g.target, g.target - g.score
                result, beaten = g.play(positions)
                gained = result.score if self.reward == "overkill" else min(result.score, needed)
                reward = gained / target + (1.0 if beaten else 0.0)
                self._last_hand = {"type": H.HAND_NAMES[result.hand_type], "chips": result.chips,
                                   "mult": result.mult, "score": result.score}
            else:
                g.discard(positions)
        elif a == A.SELECT:
            g.select_blind()
        elif a == A.SKIP:
            g.skip_blind()
        elif a < A.SELL:
            g.buy(a - A.BUY)
        elif a < A.REROLL:
            g.sell(a - A.SELL)
        elif a == A.REROLL:
            g.reroll()
        else:
            g.leave_shop()
        self._steps += 1
        obs, info = self._observe(full=a >= A.SELECT or g.phase != PHASE_PLAY or g.boss_active >= 0)
        terminated = g.phase == PHASE_OVER
        truncated = not terminated and self._steps >= self.max_steps
        return obs, reward, terminated, truncated, info

    def render(self):
        from pipeline.envs.balatro.render import draw
        return draw(self.game)

    def current_observation(self) -> tuple[np.ndarray, dict[str, Any]]:
        """(obs, info) of the current state, e.g. after `load_state_dict`."""
        return self._observe()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The whole simulator state as plain Python values (json-serialisable)."""
        return {"game": self.game.state_dict(), "steps": self._steps,
                "np_random": _plain_state(self.np_random.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["game"]
        mine = {"mode": self.mode, "stake": B.STAKES.index(self.stake), "deck_name": self.deck,
                "endless": self.endless}
        for field, value in mine.items():
            if saved[field] != value:
                raise ValueError(f"env.load_state_dict: the state has {field}={saved[field]!r} "
                                 f"but this env has {field}={value!r} (build the env with the same config)")
        self.game.load_state_dict(saved)
        self._steps = int(state["steps"])
        self.np_random.bit_generator.state = state["np_random"]
        self._last_hand = None
        self._observe()

    # ----------------------------------------------------------------- mask, obs, info
    def _compute_mask(self) -> np.ndarray:
        g = self.game
        m = self._mask
        phase = g.phase
        if phase == PHASE_PLAY:
            forced = g.hand.index(g.forced) if g.forced >= 0 else -1
            key = (len(g.hand), g.discards_left > 0, len(g.jokers), forced)
            cached = _PLAY_MASK_CACHE.get(key)
            if cached is None:
                cached = np.zeros(A.N_ACTIONS, dtype=bool)
                fit = _PLAY_MASKS[key[0]]
                if forced >= 0:
                    fit = fit & A.SUBSET_MEMBER[:, forced]
                cached[A.PLAY:A.DISCARD] = fit
                if key[1]:
                    cached[A.DISCARD:A.SELECT] = fit
                cached[A.SELL:A.SELL + key[2]] = True
                _PLAY_MASK_CACHE[key] = cached
            m[:] = cached
            return m
        m[:] = False
        if phase == PHASE_BLIND_SELECT:
            m[A.SELECT] = True
            m[A.SKIP] = g.blind_idx < B.BOSS
        elif phase == PHASE_SHOP:
            for i in range(S.N_SHOP_SLOTS):
                m[A.BUY + i] = g.can_buy(i)
            m[A.REROLL] = g.money >= g.reroll_cost
            m[A.LEAVE] = True
        if phase != PHASE_OVER and g.jokers:
            m[A.SELL:A.SELL + len(g.jokers)] = True
        return m

    def _observe(self, full: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
        """Write the observation into the preallocated buffer and build `info`.

        `full=False` (a play or discard that stays inside a boss-free round) rewrites only
        the parts such a step can change: hand, round counters, hand types played, deck.
        """
        g = self.game
        o = self._obs
        o[:O_RUN] = 0.0
        hand = g.hand
        n = len(hand)
        hv = self._hand_view
        if n:
            feat = _CARD_FEAT[hand]
            hv[:n] = feat
            if g.boss_active < 0:
                o[O_COUNTS:O_ROUND] = feat[:, :17].sum(axis=0) * _COUNT_SCALE
            else:
                debuffed, face_down, forced = g.debuffed, g.face_down, g.forced
                for i, c in enumerate(hand):
                    if c in face_down:
                        hv[i] = _FACE_DOWN_ROW
                    elif c in debuffed:
                        hv[i, 19] = 1.0
                    if c == forced:
                        hv[i, 20] = 1.0
                o[O_COUNTS:O_ROUND] = hv[:n, :17].sum(axis=0) * _COUNT_SCALE
        target = g.target
        phase = g.phase
        if phase != PHASE_PLAY:
            target = g.shown_target()
        o[O_DECK:] = 0.0
        o[O_TYPES:O_JOKERS] = 0.0
        if phase == PHASE_PLAY:
            o[O_ROUND] = min(g.hands_left / 5.0, 1.0)
            o[O_ROUND + 1] = min(g.discards_left / 5.0, 1.0)
            o[O_ROUND + 2] = min(g.score / target, 1.0)
            o[O_ROUND + 3] = min(math.log10(target) / 10.0, 1.0)
            o[O_ROUND + 4] = g.hand_size / 8.0
            o[O_ROUND + 5] = len(g.deck) / 52.0
            self._deck_view[g.deck] = 1.0
            for t in g.round_types:
                o[O_TYPES + t] = 1.0
        money = g.money
        if full:
            self._write_static()
        mask = self._compute_mask()
        ante, rnd, score, won = g.ante, g.round, g.score, g.won
        info = {
            "ante": ante, "round": rnd, "blind": B.BLIND_KINDS[g.blind_idx], "target": target,
            "score": score, "money": money, "hands_left": g.hands_left,
            "discards_left": g.discards_left, "jokers": [J.JOKER_NAMES[j] for j in g.jokers],
            "phase": PHASE_NAMES[phase], "won": won,
            "game": {"ante": float(ante), "round": float(rnd), "score": float(score),
                     "won": float(won), "money": float(money)},
            "action_mask": mask.copy(),
        }
        if self._last_hand is not None:
            info["last_hand"] = self._last_hand
        return o.copy(), info

    def _write_static(self) -> None:
        """Run-level features: money, ante, blind, phase, levels, jokers, shop, boss, tags."""
        g = self.game
        o = self._obs
        o[O_RUN:O_TYPES] = 0.0
        o[O_JOKERS:O_DECK] = 0.0
        money = g.money
        o[O_RUN] = min(g.ante, 8) / 8.0
        o[O_RUN + 1] = min(g.round, 24) / 24.0
        o[O_RUN + 2] = min(max(money, 0), 25) / 25.0
        o[O_RUN + 3] = min(max(money, 0), 200) / 200.0
        o[O_RUN + 4] = g.won
        o[O_BLIND + g.blind_idx] = 1.0
        o[O_PHASE + g.phase] = 1.0
        levels = g.levels
        for t in range(H.N_HAND_TYPES):
            if levels[t] != 1:
                o[O_LEVELS + t] = min(levels[t] - 1, 10) / 10.0
        for i, j in enumerate(g.jokers):
            o[O_JOKERS + i * J.N_JOKERS + j] = 1.0
        if g.disabled_joker >= 0:
            o[O_JOKER_OFF + g.disabled_joker] = 1.0
        if g.phase == PHASE_SHOP:
            for i, (kind, item, price) in enumerate(g.shop):
                if kind == S.SLOT_EMPTY:
                    continue
                o[O_SHOP + i * SHOP_W + (item if kind == S.SLOT_JOKER else J.N_JOKERS + item)] = 1.0
                o[O_SHOP_NUM + i] = min(price / 10.0, 1.0)
                o[O_SHOP_NUM + 2 + i] = g.can_buy(i)
            o[O_SHOP_NUM + 4] = min(g.reroll_cost / 10.0, 1.0)
            o[O_SHOP_NUM + 5] = money >= g.reroll_cost
        if g.phase != PHASE_OVER:
            o[O_BOSS + g.boss] = 1.0
            o[O_BOSS + B.N_BOSSES] = g.boss_active >= 0
            o[O_TAGS + g.tags[0]] = 1.0
            o[O_TAGS + B.N_TAGS + g.tags[1]] = 1.0

    # ----------------------------------------------------------------- text interface
    def action_mask(self) -> np.ndarray:
        return self._mask.copy()

    def text_view(self) -> str:
        g = self.game
        kind = B.BLIND_TITLES[g.blind_idx]
        lines = [f"Balatro ({self.stake.title()} Stake, {self.deck.title()} Deck) - "
                 f"Ante {g.ante}, Round {g.round}, phase: {PHASE_NAMES[g.phase]}"]
        boss_line = f"Boss Blind this ante: {B.BOSS_NAMES[g.boss]} ({B.BOSS_TEXT[g.boss]})"
        if g.phase == PHASE_PLAY:
            title = B.BOSS_NAMES[g.boss] if g.blind_idx == B.BOSS else kind
            lines.append(f"Blind: {title} - score {g.score} / {g.target}")
            if g.blind_idx == B.BOSS:
                lines.append(f"Boss effect: {B.BOSS_TEXT[g.boss]}")
            lines.append(f"Hands left: {g.hands_left}   Discards left: {g.discards_left}   "
                         f"Money: ${g.money}")
            cards = []
            for i, c in enumerate(g.hand):
                name = "??" if c in g.face_down else card_name(c)
                if c in g.debuffed and c not in g.face_down:
                    name += "(debuffed)"
                if c == g.forced:
                    name += "(forced)"
                cards.append(f"{i + 1}:{name}")
            lines.append("Hand: " + "  ".join(cards))
            lines.append(f"Cards left in deck: {len(g.deck)}")
        elif g.phase == PHASE_BLIND_SELECT:
            target = B.blind_target(g.ante, g.blind_idx, g.boss, g.stake)
            lines.append(f"Next blind: {B.BOSS_NAMES[g.boss] if g.blind_idx == B.BOSS else kind}"
                         f" - target {target}   Money: ${g.money}")
            lines.append(boss_line)
            if g.blind_idx < B.BOSS:
                tag = g.tags[g.blind_idx]
                lines.append(f"Skipping it gives: {B.TAG_NAMES[tag]} ({B.TAG_TEXT[tag]})")
        elif g.phase == PHASE_SHOP:
            lines.append(f"Shop - Money: ${g.money}   Reroll: ${g.reroll_cost}")
            for i, (kind_, item, price) in enumerate(g.shop):
                lines.append(f"  {i + 1}: {S.slot_text(kind_, item, price)}")
            lines.append(boss_line)
        else:
            lines.append("Game over: " + ("run won" if g.won else "out of hands")
                         + f" (final score {g.score} / {g.target}, money ${g.money})")
        if g.jokers:
            lines.append("Jokers (left to right): " + "; ".join(
                f"{i + 1}. {J.joker_text(j)} [sell ${g.joker_sell[i]}]"
                + (" (disabled)" if i == g.disabled_joker else "")
                for i, j in enumerate(g.jokers)))
        else:
            lines.append(f"Jokers: none (up to {MAX_JOKERS})")
        levels = [f"{H.HAND_NAMES[t]} lv{lv}" for t, lv in enumerate(g.levels) if lv != 1]
        if levels:
            lines.append("Hand levels above 1: " + ", ".join(levels))
        lines.append("Legal now: " + self._legal_summary())
        return "\n".join(lines)

    def describe_actions(self) -> str:
        return ("Answer with one command: 'play 1 3 5' (1-5 hand positions, 1-based), "
                "'discard 2 4', 'select' (play the next blind), 'skip' (skip Small/Big blind "
                "for its tag), 'buy 1' (shop slot), 'sell 2' (joker position), 'reroll', "
                "'leave' (leave the shop).")

    def _legal_summary(self) -> str:
        g = self.game
        m = self._mask
        parts = []
        if g.phase == PHASE_PLAY:
            n = len(g.hand)
            forced = "" if g.forced < 0 else f", must include card {g.hand.index(g.forced) + 1}"
            parts.append(f"play 1-5 of positions 1-{n}{forced}")
            if g.discards_left > 0:
                parts.append(f"discard 1-5 of positions 1-{n}{forced}")
        if m[A.SELECT]:
            parts.append("select")
        if m[A.SKIP]:
            parts.append("skip")
        buys = [str(i + 1) for i in range(S.N_SHOP_SLOTS) if m[A.BUY + i]]
        if buys:
            parts.append("buy " + "|".join(buys))
        if g.jokers and g.phase != PHASE_OVER:
            parts.append("sell " + "|".join(str(i + 1) for i in range(len(g.jokers))))
        if m[A.REROLL]:
            parts.append("reroll")
        if m[A.LEAVE]:
            parts.append("leave")
        return ", ".join(parts) if parts else "nothing (the episode is over; reset)"

    def action_to_text(self, action: int) -> str:
        a = int(action)
        if not 0 <= a < A.N_ACTIONS:
            raise IllegalActionError(f"action {a} is outside 0..{A.N_ACTIONS - 1}")
        if a < A.SELECT:
            verb = "play" if a < A.DISCARD else "discard"
            subset = A.SUBSETS[a if a < A.DISCARD else a - A.DISCARD]
            return verb + " " + " ".join(str(i + 1) for i in subset)
        if a == A.SELECT:
            return "select"
        if a == A.SKIP:
            return "skip"
        if a < A.SELL:
            return f"buy {a - A.BUY + 1}"
        if a < A.REROLL:
            return f"sell {a - A.SELL + 1}"
        return "reroll" if a == A.REROLL else "leave"

    _VERBS = {"play": "play", "discard": "discard", "select": "select", "skip": "skip",
              "buy": "buy", "sell": "sell", "reroll": "reroll", "leave": "leave",
              "choose": "select", "start": "select", "exit": "leave", "continue": "leave",
              "next": "leave", "done": "leave", "purchase": "buy"}

    def parse_action(self, text: str) -> int:
        """Map an answer such as 'Play 1, 3 and 5' or 'discard K♠ 2♥' to a legal action."""
        raw = text.strip()
        tokens = re.findall(r"[A-Za-z]+|\d+|[♠♥♦♣]", raw.replace(",", " "))
        low = [t.lower() for t in tokens]
        verb = next((self._VERBS[t] for t in low if t in self._VERBS), None)
        if verb is None:
            raise IllegalActionError(f"could not find a command in {raw!r}; "
                                     f"legal now: {self._legal_summary()}. {self.describe_actions()}")
        after = raw[raw.lower().find(next(t for t in low if self._VERBS.get(t) == verb)):]
        numbers = [int(x) for x in re.findall(r"\d+", after.replace(",", " "))]
        if verb in ("play", "discard"):
            positions = self._positions_from(after, numbers)
            if not 1 <= len(positions) <= 5:
                raise IllegalActionError(f"{verb} needs 1 to 5 distinct hand positions, got {raw!r}; "
                                         f"legal now: {self._legal_summary()}")
            bad = [p + 1 for p in positions if p >= len(self.game.hand) or p < 0]
            if bad:
                raise IllegalActionError(f"hand position(s) {bad} do not exist (the hand has "
                                         f"{len(self.game.hand)} cards); legal now: {self._legal_summary()}")
            sub = A.SUBSET_INDEX[tuple(sorted(positions))]
            action = (A.PLAY if verb == "play" else A.DISCARD) + sub
        elif verb in ("buy", "sell"):
            if len(numbers) != 1:
                raise IllegalActionError(f"{verb} needs exactly one position, got {raw!r}; "
                                         f"legal now: {self._legal_summary()}")
            k = numbers[0] - 1
            limit = S.N_SHOP_SLOTS if verb == "buy" else MAX_JOKERS
            if not 0 <= k < limit:
                raise IllegalActionError(f"{verb} {k + 1}: no such position (1..{limit}); "
                                         f"legal now: {self._legal_summary()}")
            action = (A.BUY if verb == "buy" else A.SELL) + k
        else:
            action = {"select": A.SELECT, "skip": A.SKIP, "reroll": A.REROLL, "leave": A.LEAVE}[verb]
        if not self._mask[action]:
            raise IllegalActionError(self._illegal_message(action))
        return action

    def _positions_from(self, text: str, numbers: list[int]) -> list[int]:
        if numbers and all(1 <= x <= MAX_HAND for x in numbers) and not _CARD_RE.search(text):
            if len(set(numbers)) != len(numbers):
                raise IllegalActionError(f"repeated hand position in {text!r}")
            return [x - 1 for x in numbers]
        # Card names instead of positions: 'play K♠ 10♥' or 'play King of Spades'.
        hand = self.game.hand
        found = []
        for m in _CARD_RE.finditer(text):
            card = _card_from_match(m)
            if card not in hand or card in self.game.face_down:
                raise IllegalActionError(f"{m.group(0)!r} is not a visible card in your hand; "
                                         f"legal now: {self._legal_summary()}")
            found.append(hand.index(card))
        if numbers and not found:
            bad = [x for x in numbers if not 1 <= x <= MAX_HAND]
            raise IllegalActionError(f"hand position(s) {bad} out of range 1..{len(hand)}")
        if len(set(found)) != len(found):
            raise IllegalActionError(f"repeated card in {text!r}")
        return found

    def _illegal_message(self, a: int) -> str:
        g = self.game
        if not 0 <= a < A.N_ACTIONS:
            return f"action {a} is outside 0..{A.N_ACTIONS - 1}"
        what = self.action_to_text(a)
        phase = PHASE_NAMES[g.phase]
        if g.phase == PHASE_OVER:
            why = "the episode is over (call reset())"
        elif a < A.SELECT and g.phase != PHASE_PLAY:
            why = f"cards can only be played or discarded during a round, not in phase {phase}"
        elif A.DISCARD <= a < A.SELECT and g.discards_left <= 0:
            why = "no discards left"
        elif a < A.SELECT and g.forced >= 0:
            why = (f"the selection must use positions 1-{len(g.hand)} and include the forced "
                   f"card at position {g.hand.index(g.forced) + 1}")
        elif a < A.SELECT:
            why = f"the hand has only {len(g.hand)} cards"
        elif a in (A.SELECT, A.SKIP) and g.phase != PHASE_BLIND_SELECT:
            why = f"blinds are chosen in phase blind_select, not {phase}"
        elif a == A.SKIP:
            why = "the Boss Blind cannot be skipped"
        elif A.BUY <= a < A.SELL:
            if g.phase != PHASE_SHOP:
                why = f"buying needs the shop, not phase {phase}"
            else:
                kind, _, price = g.shop[a - A.BUY]
                why = ("that slot is empty" if kind == S.SLOT_EMPTY else
                       f"it costs ${price} and you have ${g.money}" if price > g.money else
                       f"all {MAX_JOKERS} joker slots are full")
        elif A.SELL <= a < A.REROLL:
            why = f"you have {len(g.jokers)} joker(s)"
        elif a == A.REROLL:
            why = (f"rerolling needs the shop, not phase {phase}" if g.phase != PHASE_SHOP
                   else f"a reroll costs ${g.reroll_cost} and you have ${g.money}")
        else:
            why = f"leaving needs the shop, not phase {phase}"
        return f"illegal action {a} ({what}): {why}; legal now: {self._legal_summary()}"


_RANK_WORDS = {"two": 0, "three": 1, "four": 2, "five": 3, "six": 4, "seven": 5, "eight": 6,
               "nine": 7, "ten": 8, "jack": 9, "queen": 10, "king": 11, "ace": 12,
               "10": 8, "j": 9, "q": 10, "k": 11, "a": 12}
_RANK_WORDS.update({str(v): v - 2 for v in range(2, 10)})
_SUIT_WORDS = {"♦": 0, "d": 0, "diamond": 0, "♣": 1, "c": 1, "club": 1, "♥": 2, "h": 2, "heart": 2,
               "♠": 3, "s": 3, "spade": 3}
_CARD_RE = re.compile(
    r"(?<![a-z0-9])(10|[2-9]|[jqka]|two|three|four|five|six|seven|eight|nine|ten|jack|queen|king|ace)"
    r"\s*(?:of\s+)?(♠|♥|♦|♣|spades?|hearts?|clubs?|diamonds?|[shcd])(?![a-z])", re.IGNORECASE)


def _card_from_match(m: re.Match) -> int:
    rank = _RANK_WORDS[m.group(1).lower()]
    suit_word = m.group(2).lower()
    suit = _SUIT_WORDS[suit_word if len(suit_word) == 1 else suit_word.rstrip("s")]
    return rank * 4 + suit


def _plain_state(value):
    if isinstance(value, dict):
        return {k: _plain_state(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value
