"""Baseline agents: uniform random over legal actions (and, for Balatro, a heuristic)."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from pipeline.agents.base import Transition, legal_actions


class _FixedPolicyAgent:
    """What agents that do not learn share: nothing to observe or update; only an RNG."""

    rng: np.random.Generator

    def observe(self, transition: Transition) -> None:
        pass

    def update(self, step: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class RandomAgent(_FixedPolicyAgent):
    """Uniform over the legal actions of `info["action_mask"]`; learns nothing."""

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Discrete, *,
                 seed: int = 0, env: Any = None, **_: Any) -> None:
        self.n_actions = int(action_space.n)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, info: dict[str, Any], *, explore: bool = True) -> int:
        return int(self.rng.choice(legal_actions(info, self.n_actions)))


# Rough worth of each Balatro joker in "+mult equivalents" (index = joker id in
# pipeline.envs.balatro.jokers); the heuristic buys the best affordable one.
_JOKER_VALUE = (4, 3, 3, 3, 3, 4, 3, 3, 2, 3, 3, 2, 2.5, 2, 2.5, 5, 4, 3, 6, 3.5, 4, 3.5, 3, 2,
                7, 6, 9)
# Hand types worth levelling with Planets: Pair, Two Pair, Three of a Kind, Straight,
# Flush, Full House.
_PLANET_HANDS = (1, 2, 3, 4, 5, 6)


class HeuristicAgent(_FixedPolicyAgent):
    """A rule-based Balatro player.

    It reads the state from the observation and `info` of the env that is being stepped
    (hand, jokers, levels, boss, shop, target, score, money), not from `env`: the run loop
    evaluates on a second env instance, and reading another instance would play the wrong
    game. Face-down cards stay unknown to it, as to any fair player.

    Play phase: scores every legal play with the simulator's own scoring function (jokers,
    hand levels and boss effects included; face-down cards count as absent) and plays the
    best one when it finishes the blind, when repeating it would, or when no discard is
    left; otherwise it discards towards a flush (4+ of a suit), a straight (4 of a 5-rank
    window) or, failing both, keeps pairs and high cards. Blind select: always selects.
    Shop: buys the most valuable affordable joker while a slot is free (replacing a
    clearly weaker one when full), buys Planets for common hand types (the best-levelled
    first, others with money to spare), rerolls only above $25 plus the reroll cost (so
    interest is kept), then leaves.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Discrete, *,
                 seed: int = 0, env: Any = None, **_: Any) -> None:
        self.n_actions = int(action_space.n)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, info: dict[str, Any], *, explore: bool = True) -> int:
        from pipeline.envs.balatro import actions as A

        mask = info["action_mask"]
        phase = info["phase"]
        if phase == "play":
            return self._play(_BalatroView(obs, info), mask, A)
        if phase == "blind_select" and mask[A.SELECT]:
            return A.SELECT
        if phase == "shop":
            return self._shop(_BalatroView(obs, info), mask, A)
        legal = legal_actions(info, self.n_actions)
        if len(legal) == 0:
            raise ValueError("HeuristicAgent.act: no legal action (the episode is over; reset the env)")
        return int(legal[0])

    def _play(self, view: "_BalatroView", mask: np.ndarray, A: Any) -> int:
        best_score, best = -1, -1
        for k in np.flatnonzero(mask[A.PLAY:A.DISCARD]):
            score = view.preview(A.SUBSETS[k])
            if score > best_score:
                best_score, best = score, int(k)
        needed = view.target - view.score
        if best_score >= needed or view.discards_left <= 0 or best_score * view.hands_left >= needed:
            return A.PLAY + best
        discard = self._discard_choice(view)
        if discard:
            sub = A.SUBSET_INDEX.get(tuple(discard))
            if sub is not None and mask[A.DISCARD + sub]:
                return A.DISCARD + sub
        return A.PLAY + best

    @staticmethod
    def _discard_choice(view: "_BalatroView") -> list[int]:
        """Positions to discard (face-down and lowest ranks first, at most 5)."""
        hand = view.hand                                  # card ids, -1 when face down
        visible = [i for i, c in enumerate(hand) if c >= 0]
        suits = {i: hand[i] & 3 for i in visible}
        ranks = {i: hand[i] >> 2 for i in visible}
        suit_list = list(suits.values())
        top_suit = max(range(4), key=suit_list.count)
        keep: set[int]
        if suit_list.count(top_suit) >= 4:
            keep = {i for i in visible if suits[i] == top_suit}
        else:
            present = set(ranks.values())
            if 12 in present:
                present.add(-1)                           # the Ace also plays low
            best_window, best_hits = -1, 0
            for lo in range(-1, 9):
                hits = sum(1 for r in range(lo, lo + 5) if r in present)
                if hits > best_hits:
                    best_window, best_hits = lo, hits
            if best_hits >= 4:
                keep, seen = set(), set()
                for i in visible:
                    r = -1 if (ranks[i] == 12 and best_window == -1) else ranks[i]
                    if best_window <= r < best_window + 5 and r not in seen:
                        keep.add(i)
                        seen.add(r)
            else:
                values = list(ranks.values())
                keep = {i for i in visible if values.count(ranks[i]) >= 2} or set(visible[:2])
        order = [i for i in range(len(hand) - 1, -1, -1) if hand[i] < 0 and i != view.forced]
        order += [i for i in range(len(hand) - 1, -1, -1)
                  if hand[i] >= 0 and i not in keep and i != view.forced]
        chosen = order[:5] if view.forced < 0 else [view.forced] + order[:4]
        return sorted(chosen)

    def _shop(self, view: "_BalatroView", mask: np.ndarray, A: Any) -> int:
        from pipeline.envs.balatro.game import MAX_JOKERS
        from pipeline.envs.balatro.jokers import JOKER_COSTS

        best_slot, best_value = -1, 0.0
        for i, (kind, item, price) in enumerate(view.shop):
            if kind == "joker" and price <= view.money:
                value = _JOKER_VALUE[item]
                if value > best_value:
                    best_slot, best_value = i, value
        if best_slot >= 0:
            if mask[A.BUY + best_slot]:
                return A.BUY + best_slot
            if len(view.jokers) >= MAX_JOKERS:
                weakest = min(range(len(view.jokers)), key=lambda j: _JOKER_VALUE[view.jokers[j]])
                refund = max(1, JOKER_COSTS[view.jokers[weakest]] // 2)
                if _JOKER_VALUE[view.jokers[weakest]] * 1.5 < best_value \
                        and view.shop[best_slot][2] <= view.money + refund:
                    return A.SELL + weakest
        top = max(view.levels[t] for t in _PLANET_HANDS)
        for i, (kind, item, price) in enumerate(view.shop):
            if kind == "planet" and mask[A.BUY + i] and item in _PLANET_HANDS and (
                    view.levels[item] == top or view.money >= price + 5):
                return A.BUY + i
        # Reroll only with money to spare above the $25 that earns full interest.
        if mask[A.REROLL] and view.money - view.reroll_cost >= 25:
            return A.REROLL
        return A.LEAVE


class _BalatroView:
    """What a player can see of a Balatro state, decoded from BalatroEnv's observation
    (layout in pipeline/envs/balatro/env.py) and info."""

    def __init__(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        from pipeline.envs.balatro import blinds as B
        from pipeline.envs.balatro import env as E
        from pipeline.envs.balatro.jokers import N_JOKERS

        self.target, self.score = info["target"], info["score"]
        self.hands_left, self.discards_left = info["hands_left"], info["discards_left"]
        self.money = info["money"]
        slots = obs[E.O_HAND:E.O_COUNTS].reshape(8, E.SLOT_W)
        self.hand: list[int] = []
        debuffed: set[int] = set()
        self.forced = -1
        for i in range(8):
            row = slots[i]
            if row[17] < 0.5:
                break
            if row[18] > 0.5:
                self.hand.append(-1)
                continue
            card = int(row[:13].argmax()) * 4 + int(row[13:17].argmax())
            self.hand.append(card)
            if row[19] > 0.5:
                debuffed.add(card)
            if row[20] > 0.5:
                self.forced = i
        self.debuffed = debuffed
        self.levels = [int(round(x * 10)) + 1 for x in obs[E.O_LEVELS:E.O_TYPES]]
        self.round_types = [t for t, x in enumerate(obs[E.O_TYPES:E.O_JOKERS]) if x > 0.5]
        jokers = obs[E.O_JOKERS:E.O_JOKER_OFF].reshape(5, N_JOKERS)
        off = obs[E.O_JOKER_OFF:E.O_SHOP]
        self.jokers = [int(row.argmax()) for row in jokers if row.max() > 0.5]
        self.active_jokers = [j for i, j in enumerate(self.jokers) if off[i] < 0.5]
        shop = obs[E.O_SHOP:E.O_SHOP_NUM].reshape(2, E.SHOP_W)
        nums = obs[E.O_SHOP_NUM:E.O_BOSS]
        self.shop = []
        for i in range(2):
            row = shop[i]
            if row.max() < 0.5:
                self.shop.append(("empty", 0, 0))
                continue
            item = int(row.argmax())
            price = int(round(nums[i] * 10))
            self.shop.append(("joker", item, price) if item < N_JOKERS
                             else ("planet", item - N_JOKERS, price))
        self.reroll_cost = int(round(nums[4] * 10))
        boss_active = obs[E.O_BOSS + B.N_BOSSES] > 0.5
        self.boss = int(obs[E.O_BOSS:E.O_BOSS + B.N_BOSSES].argmax()) if boss_active else -1

    def preview(self, positions) -> int:
        """Score of playing these positions (face-down cards count as absent)."""
        from pipeline.envs.balatro import blinds as B
        from pipeline.envs.balatro.hands import evaluate
        from pipeline.envs.balatro.scoring import score_cards

        cards = [self.hand[i] for i in positions if self.hand[i] >= 0]
        if not cards:
            return 0
        evaluated = evaluate(cards)
        hand_type = evaluated[0]
        boss = self.boss
        allowed = not ((boss == B.PSYCHIC and len(positions) < 5)
                       or (boss == B.EYE and hand_type in self.round_types)
                       or (boss == B.MOUTH and self.round_types and self.round_types[0] != hand_type))
        levels = self.levels
        if boss == B.ARM and levels[hand_type] > 1:
            levels = list(levels)
            levels[hand_type] -= 1
        return score_cards(cards, self.active_jokers, levels, debuffed=self.debuffed,
                           discards_left=self.discards_left, n_jokers=len(self.jokers),
                           flint=boss == B.FLINT, allowed=allowed, evaluated=evaluated).score
