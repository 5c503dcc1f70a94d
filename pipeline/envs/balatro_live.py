"""BalatroLiveEnv: the real Balatro, driven through the balatrobot mod (`pipeline/BalatroLive-v0`).

balatrobot (github.com/coder/balatrobot, v1.x) serves JSON-RPC 2.0 over HTTP at
http://127.0.0.1:12346: every call (`start`, `select`, `play {cards}`, `buy {card}`, ...)
answers with the game's state as a GameState JSON object (reference:
shared/reference/balatro_rules.md section 7 and balatrobot's docs/api.md).

Same interface as the simulator (`pipeline.envs.balatro.BalatroEnv`), so a policy trained
there plays the real game unchanged:

- Actions: the simulator's ``Discrete(447)`` layout. Hand positions are positions in the
  simulator's order (rank descending, then Spades, Hearts, Clubs, Diamonds), mapped back to
  the real game's hand indices; shop slot i is the real shop's i-th card; "leave" is
  `next_round`. Cash-out (`ROUND_EVAL`) and opened booster packs (skipped) are handled
  automatically, as in the simulator.
- Observation, action mask, info and text view: a GameState is turned into a simulator
  game state (`GameStateEncoder`) and encoded by the simulator's own code, so there is one
  encoder. What the simulator does not know gets no feature: a joker, tag or boss outside
  its tables is a zero one-hot (the joker still takes its slot and can be sold); a shop
  card it cannot model (Tarot, Spectral, unknown joker, playing card) shows as an empty,
  unbuyable slot; cards past the 8th hand position, face-up cards without rank or suit
  (Stone cards) and jokers past the 5th are not addressable.
- Reward: as in the simulator, a played hand gives (chips it scored) / (blind target),
  plus 1 when it beats the blind.
- ``mode="run"``: a whole run (the episode ends at game over, or when the run is won unless
  ``endless``); ``mode="blind"``: only the run's first blind (ante 1, Small Blind). Both
  start inside that first Small Blind, selected automatically, like the simulator.

Seeds: ``seed`` (a Balatro seed string) fixes every episode's deal; otherwise each reset
sends an 8-character seed drawn from the env's RNG, so ``reset(seed=n)`` (and the resets
after it) replay the same deals, as in the simulator. One game serves one env: a second
client starting a run is detected (the GameState's seed changes) and reported instead of
silently playing the wrong game.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

import gymnasium as gym
import numpy as np

from pipeline.config import ConfigError
from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.cards import N_CARDS
from pipeline.envs.balatro.env import O_BOSS, O_JOKERS, O_TAGS, BalatroEnv
from pipeline.envs.balatro.game import (MAX_HAND, MAX_JOKERS, PHASE_BLIND_SELECT, PHASE_OVER,
                                        PHASE_PLAY, PHASE_SHOP)
from pipeline.envs.text import IllegalActionError

DEFAULT_URL = "http://127.0.0.1:12346"
MODES = ("run", "blind")


@dataclass
class BalatroLiveEnvConfig:
    """Constructor parameters of BalatroLiveEnv, as the `env` config group's schema."""

    _target_: str = "pipeline.envs.balatro_live.BalatroLiveEnv"
    name: str = "balatro_live"  # label for run names, tags, the MLflow experiment (not passed on)
    url: str = DEFAULT_URL  # balatrobot's JSON-RPC endpoint
    timeout_s: float = 60.0  # seconds to wait for one answer (the game animates between states)
    mode: str = "run"  # run: a whole run | blind: the run's first blind only
    stake: str = "white"  # white .. gold
    deck: str = "red"  # red | blue | yellow | green (the decks the simulator knows)
    seed: Optional[str] = None  # a Balatro seed for every episode; None: from the env's RNG
    endless: bool = False  # mode=run: keep playing after the run is won
    max_steps: int = 2000  # env steps before an episode is truncated
    render_mode: Optional[str] = "rgb_array"  # render() draws the state the agent sees


# ---------------------------------------------------------------- errors
class BalatroLiveError(RuntimeError):
    """The real game could not be driven; the message says what happened and what to do."""


class BalatroConnectionError(BalatroLiveError, ConfigError):
    """balatrobot cannot be reached at env.url (a configuration problem: one line, exit 2)."""


class BalatroProtocolError(BalatroLiveError):
    """An answer that is not the JSON-RPC 2.0 / GameState balatrobot documents."""


class BalatroRPCError(BalatroLiveError):
    """balatrobot answered a call with a JSON-RPC error (code -32000..-32003)."""

    def __init__(self, method: str, params: dict[str, Any] | None, code: Any, name: str,
                 message: str) -> None:
        self.method, self.params, self.code, self.name = method, params, code, name
        call = method + (f" {json.dumps(params)}" if params else "")
        super().__init__(f"balatrobot refused {call}: {name} ({code}): {message}")


ERROR_NAMES = {-32000: "INTERNAL_ERROR", -32001: "BAD_REQUEST", -32002: "INVALID_STATE",
               -32003: "NOT_ALLOWED"}


# ---------------------------------------------------------------- JSON-RPC client
class BalatroBotClient:
    """A JSON-RPC 2.0 client for balatrobot: one HTTP POST per call (the mod serves one
    client connection at a time, so none is held open between calls)."""

    def __init__(self, url: str = DEFAULT_URL, timeout_s: float = 60.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._next_id = 1

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params:
            message["params"] = params
        request = urllib.request.Request(self.url, data=json.dumps(message).encode(),
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as ex:  # an error status may still carry a JSON-RPC error
            body = ex.read()
            if not body:
                raise BalatroProtocolError(f"balatrobot at {self.url} answered {method} with "
                                           f"HTTP {ex.code} and no body") from None
        except (TimeoutError, socket.timeout):
            raise BalatroLiveError(f"env.timeout_s: balatrobot at {self.url} did not answer "
                                   f"{method} within {self.timeout_s:g} s (is the game paused, "
                                   "or busy animating? raise env.timeout_s)") from None
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as ex:
            reason = getattr(ex, "reason", ex)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise BalatroLiveError(f"env.timeout_s: balatrobot at {self.url} did not answer "
                                       f"{method} within {self.timeout_s:g} s") from None
            raise BalatroConnectionError(
                f"env.url: cannot reach balatrobot at {self.url} ({reason}); start Balatro with "
                f"the balatrobot mod (it listens on {DEFAULT_URL} by default) or set env.url"
            ) from None
        return self._result(method, params, request_id, body)

    def _result(self, method: str, params: dict[str, Any] | None, request_id: int,
                body: bytes) -> Any:
        try:
            reply = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BalatroProtocolError(
                f"{self.url} answered {method} with something that is not JSON "
                f"({body[:80]!r}); is env.url pointing at balatrobot?") from None
        if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0" or (
                "result" not in reply and "error" not in reply):
            raise BalatroProtocolError(
                f"{self.url} answered {method} with {str(reply)[:120]}, not a JSON-RPC 2.0 "
                "response (expected {\"jsonrpc\": \"2.0\", \"result\" or \"error\", \"id\"})")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            code = error.get("code")
            name = (error.get("data") or {}).get("name") if isinstance(error.get("data"), dict) \
                else None
            raise BalatroRPCError(method, params, code, name or ERROR_NAMES.get(code, "ERROR"),
                                  str(error.get("message", reply["error"])))
        if reply.get("id") != request_id:
            raise BalatroProtocolError(f"{self.url} answered {method} (id {request_id}) with "
                                       f"the response to id {reply.get('id')!r}")
        return reply["result"]


# ---------------------------------------------------------------- GameState -> simulator
_SUITS = {"D": 0, "C": 1, "H": 2, "S": 3}
_RANKS = {r: i for i, r in enumerate("23456789TJQKA")}
_RANKS["10"] = _RANKS["T"]
HAND_INDEX = {name: t for t, name in enumerate(H.HAND_NAMES)}
# balatrobot's keys for the simulator's tables, in the simulator's order.
JOKER_KEYS = ("j_joker", "j_greedy_joker", "j_lusty_joker", "j_wrathful_joker",
              "j_gluttenous_joker", "j_jolly", "j_zany", "j_mad", "j_crazy", "j_droll", "j_sly",
              "j_wily", "j_clever", "j_devious", "j_crafty", "j_half", "j_banner",
              "j_mystic_summit", "j_abstract", "j_scary_face", "j_smiley", "j_even_steven",
              "j_odd_todd", "j_scholar", "j_gros_michel", "j_fibonacci", "j_duo")
BOSS_KEYS = ("bl_hook", "bl_ox", "bl_house", "bl_wall", "bl_wheel", "bl_arm", "bl_club",
             "bl_fish", "bl_psychic", "bl_goad", "bl_water", "bl_window", "bl_manacle", "bl_eye",
             "bl_mouth", "bl_plant", "bl_serpent", "bl_pillar", "bl_needle", "bl_head",
             "bl_tooth", "bl_flint", "bl_mark", "bl_final_acorn", "bl_final_leaf",
             "bl_final_vessel", "bl_final_heart", "bl_final_bell")
TAG_KEYS = ("tag_uncommon", "tag_investment", "tag_boss", "tag_handy", "tag_garbage",
            "tag_coupon", "tag_d_six", "tag_top_up", "tag_skip", "tag_orbital", "tag_economy",
            "tag_double")
PLANET_KEYS = tuple("c_" + name.lower().replace(" ", "_") for name in H.PLANET_NAMES)
assert len(JOKER_KEYS) == J.N_JOKERS and len(BOSS_KEYS) == B.N_BOSSES and len(TAG_KEYS) == B.N_TAGS
JOKER_BY_KEY = {k: i for i, k in enumerate(JOKER_KEYS)}
BOSS_BY_KEY = {k: i for i, k in enumerate(BOSS_KEYS)}
TAG_BY_KEY = {k: i for i, k in enumerate(TAG_KEYS)}
PLANET_BY_KEY = {k: i for i, k in enumerate(PLANET_KEYS)}
BLIND_KEYS = ("small", "big", "boss")
# States the agent acts in; the others are passed through by `automatic_call`.
PHASE_OF_STATE = {"BLIND_SELECT": PHASE_BLIND_SELECT, "SELECTING_HAND": PHASE_PLAY,
                  "SHOP": PHASE_SHOP, "GAME_OVER": PHASE_OVER, "ROUND_EVAL": PHASE_OVER}
# Animation states balatrobot may report while the game settles: ask again.
_TRANSIENT = ("HAND_PLAYED", "DRAW_TO_HAND", "NEW_ROUND", "PLAY_TAROT")


def card_id(card: dict[str, Any]) -> int | None:
    """A balatrobot playing card -> the simulator's card id (rank * 4 + suit), None when it
    has no rank or suit (a Stone card, or a hidden card the mod does not describe)."""
    value = card.get("value") or {}
    suit, rank = value.get("suit"), value.get("rank")
    if suit is None or rank is None:
        key = str(card.get("key") or "")
        if len(key) >= 3 and key[1] == "_":
            suit, rank = key[0], key[2:]
    if suit in _SUITS and rank in _RANKS:
        return _RANKS[rank] * 4 + _SUITS[suit]
    return None


def _cards(gs: dict[str, Any], area: str) -> list[dict[str, Any]]:
    node = gs.get(area)
    cards = node.get("cards") if isinstance(node, dict) else None
    return [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def automatic_call(gs: dict[str, Any], *, mode: str = "run",
                   endless: bool = False) -> tuple[str, dict[str, Any]] | None:
    """The call that moves the game past a state the agent does not act in (the simulator
    does these by itself), or None when the agent acts now or the episode is over."""
    state = gs.get("state")
    if state == "ROUND_EVAL":
        won_run = bool(gs.get("won")) and not endless
        return None if mode == "blind" or won_run else ("cash_out", {})
    if state == "SMODS_BOOSTER_OPENED":
        return ("pack", {"skip": True})
    if state in _TRANSIENT:
        return ("gamestate", {})
    return None


def episode_over(gs: dict[str, Any], *, mode: str = "run", endless: bool = False) -> bool:
    state = gs.get("state")
    if state == "GAME_OVER":
        return True
    if state == "ROUND_EVAL":
        return mode == "blind" or (bool(gs.get("won")) and not endless)
    return False


class GameStateEncoder:
    """A balatrobot GameState -> the simulator's observation, action mask, info and text.

    The GameState is rebuilt as a simulator game state and handed to a `BalatroEnv`, whose
    own encoder, mask and text view then run unchanged. It also maps an action index back
    to the JSON-RPC call that performs it in the real game (`call_for`).
    """

    def __init__(self, *, mode: str = "run", stake: str = "white", deck: str = "red",
                 endless: bool = False) -> None:
        self.mode, self.endless = mode, endless
        self.sim = BalatroEnv(mode=mode, stake=stake, deck=deck, endless=endless,
                              render_mode="rgb_array")
        self._base = self.sim.game.state_dict()
        self.hand_order: list[int] = []  # simulator hand position -> real hand index
        self.extra_hand = 0  # real cards past position 8 (not addressable)
        self.unknown_jokers: dict[int, dict[str, Any]] = {}  # slot -> the real card
        self.unmodelled_shop: dict[int, dict[str, Any]] = {}  # slot -> the real card
        self.gamestate: dict[str, Any] = {}
        self.sell_allowed = True

    # ---- GameState -> observation
    def encode(self, gs: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        state = gs.get("state") if isinstance(gs, dict) else None
        if state not in PHASE_OF_STATE:
            expected = ", ".join(PHASE_OF_STATE)
            raise BalatroProtocolError(f"GameState.state: {state!r} has no observation "
                                       f"(expected one of: {expected})")
        self.gamestate = gs
        game = self.sim.game
        try:
            unknown_tags, unknown_boss, debuffed = self._load(gs, PHASE_OF_STATE[state])
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as ex:
            raise BalatroProtocolError(f"a GameState not in the shape balatrobot documents "
                                       f"(docs/api.md): {type(ex).__name__}: {ex}") from None
        game.debuffed = debuffed  # the game's own debuff flags, whatever caused them
        obs, info = self.sim.current_observation()
        for slot in self.unknown_jokers:
            obs[O_JOKERS + slot * J.N_JOKERS:O_JOKERS + (slot + 1) * J.N_JOKERS] = 0.0
        for k in unknown_tags:
            obs[O_TAGS + k * B.N_TAGS:O_TAGS + (k + 1) * B.N_TAGS] = 0.0
        if unknown_boss:
            obs[O_BOSS:O_BOSS + B.N_BOSSES] = 0.0
        # The simulator sells jokers in any phase; the game only in the shop or a round.
        self.sell_allowed = state != "BLIND_SELECT"
        if not self.sell_allowed:
            self.sim.action_space.legal[A.SELL:A.REROLL] = False  # the simulator's live mask
            info["action_mask"][A.SELL:A.REROLL] = False
        blind = (gs.get("blinds") or {}).get(BLIND_KEYS[game.blind_idx]) or {}
        if blind.get("score") is not None:
            info["target"] = _int(blind["score"], info["target"])
        info["jokers"] = [str(c.get("label") or c.get("key")) for c in _cards(gs, "jokers")]
        info["balatro_state"] = state
        return obs, info

    def _load(self, gs: dict[str, Any], phase: int) -> tuple[list[int], bool, set[int]]:
        state = dict(self._base)
        rnd = gs.get("round") or {}
        hands = gs.get("hands") or {}
        levels = [1] * H.N_HAND_TYPES
        played = [0] * H.N_HAND_TYPES
        round_types = []
        for name, t in HAND_INDEX.items():
            info = hands.get(name) or {}
            levels[t] = max(_int(info.get("level"), 1), 1)
            played[t] = _int(info.get("played"))
            if _int(info.get("played_this_round")) > 0:
                round_types.append(t)

        blinds = gs.get("blinds") or {}
        status = [str((blinds.get(k) or {}).get("status") or "").upper() for k in BLIND_KEYS]
        blind_idx = next((i for i, s in enumerate(status) if s in ("CURRENT", "SELECT")),
                         next((i for i, s in enumerate(status) if s == "UPCOMING"), B.SMALL))
        boss = BOSS_BY_KEY.get((blinds.get("boss") or {}).get("key"), -1)
        tags, unknown_tags = [], []
        for k in (B.SMALL, B.BIG):
            tag = TAG_BY_KEY.get(((blinds.get(BLIND_KEYS[k]) or {}).get("tag") or {}).get("key"))
            if tag is None:
                unknown_tags.append(k)
            tags.append(0 if tag is None else tag)
        boss_active = boss if phase == PHASE_PLAY and blind_idx == B.BOSS and boss >= 0 else -1

        jokers, joker_sell, disabled = [], [], -1
        self.unknown_jokers = {}
        for i, card in enumerate(_cards(gs, "jokers")[:MAX_JOKERS]):
            j = JOKER_BY_KEY.get(card.get("key"))
            if j is None:
                self.unknown_jokers[i] = card
            jokers.append(0 if j is None else j)
            joker_sell.append(_int((card.get("cost") or {}).get("sell"), 1))
            if boss_active == B.CRIMSON_HEART and (card.get("state") or {}).get("debuff"):
                disabled = i

        shop = [[S.SLOT_EMPTY, 0, 0] for _ in range(S.N_SHOP_SLOTS)]
        self.unmodelled_shop = {}
        if phase == PHASE_SHOP:
            for i, card in enumerate(_cards(gs, "shop")[:S.N_SHOP_SLOTS]):
                key, price = card.get("key"), _int((card.get("cost") or {}).get("buy"))
                if card.get("set") == "JOKER" and key in JOKER_BY_KEY:
                    shop[i] = [S.SLOT_JOKER, JOKER_BY_KEY[key], price]
                elif card.get("set") == "PLANET" and key in PLANET_BY_KEY:
                    shop[i] = [S.SLOT_PLANET, PLANET_BY_KEY[key], price]
                else:
                    self.unmodelled_shop[i] = card

        hand, face_down, debuffed, forced = self._hand(gs, boss_active)
        hand_area = gs.get("hand") if isinstance(gs.get("hand"), dict) else {}
        won = bool(gs.get("won")) or (gs.get("state") == "ROUND_EVAL" and self.mode == "blind")
        state.update(
            ante=max(_int(gs.get("ante_num"), 1), 1), blind_idx=blind_idx,
            round=_int(gs.get("round_num")), phase=phase, money=_int(gs.get("money")),
            levels=levels, played_counts=played, jokers=jokers, joker_sell=joker_sell,
            boss=max(boss, 0), tags=tags, won=won, lost=gs.get("state") == "GAME_OVER",
            shop=shop, reroll_cost=_int(rnd.get("reroll_cost"), S.REROLL_BASE),
            target=max(_int((blinds.get(BLIND_KEYS[blind_idx]) or {}).get("score"), 1), 1),
            score=_int(rnd.get("chips")), hands_left=_int(rnd.get("hands_left")),
            discards_left=_int(rnd.get("discards_left")),
            discards_used=_int(rnd.get("discards_used")),
            hands_played_round=_int(rnd.get("hands_played")),
            hand_size=min(max(_int(hand_area.get("limit"), MAX_HAND), 1), MAX_HAND),
            deck=[c for c in map(card_id, _cards(gs, "cards")) if c is not None],
            hand=hand, discard_pile=[], played_pile=[], forced=forced,
            disabled_joker=disabled, verdant=boss_active == B.VERDANT_LEAF and bool(debuffed),
            round_types=round_types,
            most_played=HAND_INDEX.get(rnd.get("most_played_hand"), H.HIGH_CARD),
            boss_active=boss_active, face_down=sorted(face_down), played_this_ante=[],
        )
        self.sim.game.load_state_dict(state)
        return unknown_tags, boss < 0, debuffed

    def _hand(self, gs: dict[str, Any], boss_active: int
              ) -> tuple[list[int], set[int], set[int], int]:
        """The hand in the simulator's order (rank, then suit, descending), truncated to the
        8 addressable positions. A face-down card the GameState does not describe takes an
        unused card id (the encoder hides face-down cards under a boss); a card without
        rank or suit that is face up (a Stone card) has no encoding and is left out."""
        entries = [(card_id(c), i, c.get("state") or {}) for i, c in enumerate(_cards(gs, "hand"))]
        known = sorted((e for e in entries if e[0] is not None), key=lambda e: -e[0])
        used = {c for c, _, _ in known}
        spare = (c for c in range(N_CARDS) if c not in used)
        hidden = [(next(spare), i, st) for c, i, st in entries
                  if c is None and st.get("hidden") and boss_active >= 0]
        ordered = (known + hidden)[:MAX_HAND]
        self.extra_hand = len(entries) - len(ordered)
        self.hand_order = [i for _, i, _ in ordered]
        face_down = {c for c, _, st in ordered if st.get("hidden")}
        debuffed = {c for c, _, st in ordered if st.get("debuff")}
        forced = next((c for c, _, st in ordered if st.get("highlight")), -1) \
            if boss_active == B.CERULEAN_BELL else -1
        return [c for c, _, _ in ordered], face_down, debuffed, forced

    # ---- simulator state -> observation (a `BalatroEnv.state_dict()` or its "game" part)
    def encode_simulator(self, state: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        game = state.get("game", state)
        self.sim.game.load_state_dict(game)
        self.hand_order = list(range(len(self.sim.game.hand)))
        self.unknown_jokers, self.unmodelled_shop, self.extra_hand = {}, {}, 0
        self.gamestate, self.sell_allowed = {}, True
        return self.sim.current_observation()

    # ---- legality
    def check(self, action: int) -> None:
        """Raise IllegalActionError, saying why, unless `action` is legal now."""
        a = int(action)
        if not self.sell_allowed and A.SELL <= a < A.REROLL:
            raise IllegalActionError(self._no_sell_message(self.sim.action_to_text(a)))
        # The simulator explains every other illegal action.
        self.sim.parse_action(self.sim.action_to_text(a))

    def parse_action(self, text: str) -> int:
        try:
            action = self.sim.parse_action(text)
        except IllegalActionError:
            if not self.sell_allowed and re.search(r"\bsell\b", text, re.IGNORECASE):
                raise IllegalActionError(self._no_sell_message(text.strip())) from None
            raise
        self.check(action)
        return action

    def _no_sell_message(self, what: str) -> str:
        legal = self.text_view().rsplit("Legal now: ", 1)[-1]
        return (f"{what!r} is not legal now: the game sells jokers only in the shop or during "
                f"a round, not while choosing a blind; legal now: {legal}")

    # ---- action -> JSON-RPC call
    def call_for(self, action: int) -> tuple[str, dict[str, Any]]:
        """The balatrobot call that performs `action` in the last encoded state."""
        a = int(action)
        if a < A.SELECT:
            positions = A.SUBSETS[a if a < A.DISCARD else a - A.DISCARD]
            cards = sorted(self.hand_order[p] for p in positions)
            return ("play" if a < A.DISCARD else "discard", {"cards": cards})
        if a == A.SELECT:
            return ("select", {})
        if a == A.SKIP:
            return ("skip", {})
        if a < A.SELL:
            return ("buy", {"card": a - A.BUY})
        if a < A.REROLL:
            return ("sell", {"joker": a - A.SELL})
        return ("reroll", {}) if a == A.REROLL else ("next_round", {})

    # ---- text
    def text_view(self) -> str:
        lines = self.sim.text_view().split("\n")
        game = self.sim.game
        for i, line in enumerate(lines):
            if line.startswith("Jokers (left to right): ") and self.unknown_jokers:
                lines[i] = "Jokers (left to right): " + "; ".join(
                    f"{k + 1}. {self._joker_text(k, j)} [sell ${game.joker_sell[k]}]"
                    + (" (disabled)" if k == game.disabled_joker else "")
                    for k, j in enumerate(game.jokers))
            for slot, card in self.unmodelled_shop.items():
                if line == f"  {slot + 1}: {S.slot_text(S.SLOT_EMPTY, 0, 0)}":
                    lines[i] = (f"  {slot + 1}: {card.get('label') or card.get('key')} "
                                f"({str(card.get('set', '')).title()}; not modelled, cannot be "
                                "bought through this interface)")
            if line.startswith("Hand: ") and self.extra_hand:
                lines[i] += (f"  (+{self.extra_hand} more that cannot be played from here: "
                             f"past position {MAX_HAND}, or without rank and suit)")
            if line.startswith("Legal now: ") and not self.sell_allowed:
                lines[i] = re.sub(r", sell [0-9|]+", "", line)
        return "\n".join(lines)

    def _joker_text(self, slot: int, joker: int) -> str:
        card = self.unknown_jokers.get(slot)
        if card is None:
            return J.joker_text(joker)
        effect = (card.get("value") or {}).get("effect")
        name = card.get("label") or card.get("key")
        return f"{name} ({effect})" if effect else str(name)


# ---------------------------------------------------------------- the env
_SEED_ALPHABET = "123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"


def seed_string(seed: int) -> str:
    """An 8-character Balatro seed derived from an integer seed (same int, same seed)."""
    n = int(seed) % len(_SEED_ALPHABET) ** 8
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(_SEED_ALPHABET))
        chars.append(_SEED_ALPHABET[r])
    return "".join(chars)


def _check(field: str, ok: bool, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"env.{field}: {value!r} is not allowed (expected {expected})")


class BalatroLiveEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    # agent=dqn with network=auto builds this Q-network (pipeline/agents/balatro_qnet.py).
    q_network = "balatro"

    def __init__(self, *, url: str = DEFAULT_URL, timeout_s: float = 60.0, mode: str = "run",
                 stake: str = "white", deck: str = "red", seed: str | None = None,
                 endless: bool = False, max_steps: int = 2000,
                 render_mode: str | None = "rgb_array") -> None:
        _check("url", isinstance(url, str) and url.startswith(("http://", "https://")), url,
               f"an http(s) URL such as {DEFAULT_URL}")
        _check("timeout_s", isinstance(timeout_s, (int, float)) and timeout_s > 0, timeout_s,
               "seconds > 0")
        _check("mode", mode in MODES, mode, "one of: " + ", ".join(MODES))
        _check("stake", stake in B.STAKES, stake, "one of: " + ", ".join(B.STAKES))
        _check("deck", deck in B.DECK_NAMES, deck,
               "one of the simulator's decks: " + ", ".join(B.DECK_NAMES))
        _check("seed", seed is None or (isinstance(seed, str) and seed.isalnum()), seed,
               "a Balatro seed such as 'ABC12345', or null")
        _check("max_steps", isinstance(max_steps, int) and max_steps >= 1, max_steps,
               "an integer >= 1")
        _check("render_mode", render_mode in (None, "rgb_array"), render_mode, "rgb_array or null")
        self.url, self.mode, self.stake, self.deck = url, mode, stake, deck
        self.seed, self.endless, self.max_steps = seed, bool(endless), int(max_steps)
        self.render_mode = render_mode
        self.client = BalatroBotClient(url, float(timeout_s))
        self.encoder = GameStateEncoder(mode=mode, stake=stake, deck=deck, endless=self.endless)
        self.action_space = self.encoder.sim.action_space  # samples what is legal right now
        self.observation_space = self.encoder.sim.observation_space
        self.gamestate: dict[str, Any] = {}
        self._run_seed: str | None = None
        self._deck_param: str | None = None
        self._steps = 0
        self._done = True

    # ---- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._call("menu")
        params: dict[str, Any] = {"stake": self.stake.upper()}
        # Like the simulator: the deal comes from the env's RNG, which reset(seed=) seeds.
        params["seed"] = self.seed or seed_string(int(self.np_random.integers(2**63 - 1)))
        gs = self._start(params)
        self._run_seed = gs.get("seed") or params["seed"]
        if gs.get("state") == "BLIND_SELECT":  # open inside the first Small Blind, as the sim
            gs = self._call("select")
        gs = self._settle(gs)
        self._steps, self._done = 0, False
        return self._observe(gs)

    def step(self, action):
        a = int(action)
        if self._done:
            raise gym.error.ResetNeeded("the episode is over: call reset() before step()")
        self.encoder.check(a)  # IllegalActionError, with the reason, before anything is sent
        game = self.encoder.sim.game
        before, target = game.score, max(game.target, 1)
        method, params = self.encoder.call_for(a)
        gs = self._call(method, params)
        reward = 0.0
        last_hand = None
        if method == "play":
            after = _int((gs.get("round") or {}).get("chips"), before)
            beaten = gs.get("state") == "ROUND_EVAL"
            reward = max(after - before, 0) / target + (1.0 if beaten else 0.0)
            last_hand = {"type": self._played_type(gs), "score": max(after - before, 0)}
        gs = self._settle(gs)
        self._steps += 1
        terminated = episode_over(gs, mode=self.mode, endless=self.endless)
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        obs, info = self._observe(gs)
        if last_hand is not None:
            info["last_hand"] = last_hand
        return obs, reward, terminated, truncated, info

    def render(self):
        return self.encoder.sim.render()

    def close(self) -> None:
        self._done = True

    # ---- text interface (the simulator's, on the state last received)
    def text_view(self) -> str:
        return self.encoder.text_view()

    def describe_actions(self) -> str:
        return self.encoder.sim.describe_actions()

    def parse_action(self, text: str) -> int:
        return self.encoder.parse_action(text)

    def action_to_text(self, action: int) -> str:
        return self.encoder.sim.action_to_text(action)

    def action_mask(self) -> np.ndarray:
        return self.encoder.sim.action_mask()

    # ---- helpers
    def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        gs = self.client.call(method, params)
        if not isinstance(gs, dict) or "state" not in gs:
            raise BalatroProtocolError(f"balatrobot answered {method} with {str(gs)[:120]}, "
                                       "not a GameState (expected an object with 'state')")
        seed = gs.get("seed")
        if method not in ("menu", "start") and self._run_seed and seed and seed != self._run_seed:
            raise BalatroLiveError(
                f"the game now plays seed {seed}, not this env's run {self._run_seed}: another "
                "client started a run (one balatrobot game serves one env; with python -m "
                "pipeline set run.eval_every=0 and run.eval_episodes=0)")
        return gs

    def _start(self, params: dict[str, Any]) -> dict[str, Any]:
        """`start`, with the deck as docs/api.md writes it ("RED"), or as newer mods want it
        ("b_red") when the first form is refused."""
        styles = [self._deck_param] if self._deck_param else [self.deck.upper(), "b_" + self.deck]
        for i, deck in enumerate(styles):
            try:
                gs = self._call("start", {"deck": deck, **params})
            except BalatroRPCError as ex:
                if i + 1 < len(styles) and ex.code == -32001 and "deck" in str(ex).lower():
                    continue
                raise
            self._deck_param = deck
            return gs
        raise AssertionError("unreachable")

    def _settle(self, gs: dict[str, Any]) -> dict[str, Any]:
        for _ in range(50):
            call = automatic_call(gs, mode=self.mode, endless=self.endless)
            if call is None:
                break
            gs = self._call(*call)
        else:
            raise BalatroProtocolError(f"the game stayed in state {gs.get('state')} after 50 calls")
        if gs.get("state") == "MENU":
            raise BalatroLiveError("the game went back to the main menu during the episode "
                                   "(another client, or the player, left the run)")
        return gs

    def _observe(self, gs: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        self.gamestate = gs
        return self.encoder.encode(gs)

    def _played_type(self, gs: dict[str, Any]) -> str | None:
        """The hand type just played: the one whose run count went up."""
        old = (self.gamestate.get("hands") or {})
        for name, info in (gs.get("hands") or {}).items():
            if _int((info or {}).get("played")) > _int((old.get(name) or {}).get("played")):
                return name
        return None
