"""A stand-in for the balatrobot mod: JSON-RPC 2.0 over HTTP on 127.0.0.1, answered by the
simulator's rules engine (`BalatroGame`).

It speaks the protocol of balatrobot's docs/api.md: POST a request
{"jsonrpc": "2.0", "method", "params", "id"}; every game call answers with a GameState
(state, ante_num, round_num, money, hands, round, blinds, jokers, hand, cards, shop, ...);
refusals are JSON-RPC errors -32001 BAD_REQUEST, -32002 INVALID_STATE, -32003 NOT_ALLOWED.
Like the real game, and unlike the simulator, it has a main menu, a blind selection before
the first round, a ROUND_EVAL state that waits for `cash_out`, a shop whose bought cards
disappear (the others move left), and it shows the hand in its own order (by suit), so
the env has to translate positions.

    with FakeBalatroBot() as fake:
        env = BalatroLiveEnv(url=fake.url)
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro import shop as S
from pipeline.envs.balatro.cards import RANK_WORDS, SUIT_NAMES
from pipeline.envs.balatro.game import (PHASE_BLIND_SELECT, PHASE_OVER, PHASE_PLAY, PHASE_SHOP,
                                        BalatroGame)
from pipeline.envs.balatro_live import BOSS_KEYS, JOKER_KEYS, PLANET_KEYS, TAG_KEYS

BAD_REQUEST, INVALID_STATE, NOT_ALLOWED = -32001, -32002, -32003
_NAMES = {BAD_REQUEST: "BAD_REQUEST", INVALID_STATE: "INVALID_STATE", NOT_ALLOWED: "NOT_ALLOWED",
          -32601: "METHOD_NOT_FOUND"}
SUIT_LETTERS = "DCHS"
RANK_LETTERS = "23456789TJQKA"


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class FakeBalatroBot:
    """`deck_style`: "upper" accepts decks as docs/api.md writes them ("RED"), "key" as
    newer mods do ("b_red"). `reply`: replace every answer's bytes (protocol-error tests)."""

    def __init__(self, *, deck_style: str = "upper",
                 reply: Callable[[dict[str, Any]], bytes] | None = None) -> None:
        self.deck_style = deck_style
        self.reply = reply
        self.game: BalatroGame | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.last_play_score = 0
        self.deck = self.stake = self.seed = ""
        self._round_eval = False
        self._skipped: set[tuple[int, int]] = set()  # (ante, blind) skipped
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle
    def __enter__(self) -> "FakeBalatroBot":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # else Nagle + delayed ACK cost ~40 ms a call

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = fake.handle(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- JSON-RPC
    def handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            return json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                "code": BAD_REQUEST, "message": "Invalid JSON", "data": {"name": "BAD_REQUEST"}}
            }).encode()
        if self.reply is not None:
            return self.reply(request)
        method, params = request.get("method"), request.get("params") or {}
        with self._lock:
            self.calls.append((method, params))
            try:
                handler = getattr(self, f"rpc_{method}", None)
                if handler is None:
                    raise RpcError(-32601, f"Method not found: {method}")
                result = handler(params)
            except RpcError as ex:
                return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": {
                    "code": ex.code, "message": str(ex),
                    "data": {"name": _NAMES.get(ex.code, "ERROR")}}}).encode()
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()

    # ---- methods
    def rpc_health(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"status": "ok"}

    def rpc_gamestate(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.gamestate()

    def rpc_menu(self, params: dict[str, Any]) -> dict[str, Any]:
        self.game, self._round_eval = None, False
        return self.gamestate()

    def rpc_start(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("MENU")
        decks = {(d.upper() if self.deck_style == "upper" else f"b_{d}"): d for d in B.DECK_NAMES}
        if params.get("deck") not in decks:
            raise RpcError(BAD_REQUEST, f"Invalid deck: {params.get('deck')!r} "
                                        f"(expected one of {sorted(decks)})")
        stakes = [s.upper() for s in B.STAKES]
        if params.get("stake") not in stakes:
            raise RpcError(BAD_REQUEST, f"Invalid stake enum: {params.get('stake')!r}")
        seed = params.get("seed")
        if seed is None:
            seed = "FAKE" + str(len(self.calls)).zfill(4)
        self.deck, self.stake, self.seed = params["deck"], params["stake"], str(seed)
        number = int.from_bytes(hashlib.sha256(self.seed.encode()).digest()[:8], "little")
        g = BalatroGame(mode="run", stake=stakes.index(params["stake"]),
                        deck=decks[params["deck"]])
        g.new_game(number)
        # The simulator opens inside the first Small Blind; the game opens on its selection.
        g.return_cards()
        g.round -= 1
        g.phase = PHASE_BLIND_SELECT
        self.game, self._round_eval, self._skipped = g, False, set()
        return self.gamestate()

    def rpc_select(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("BLIND_SELECT")
        self.game.select_blind()
        return self.gamestate()

    def rpc_skip(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("BLIND_SELECT")
        g = self.game
        if g.blind_idx == B.BOSS:
            raise RpcError(NOT_ALLOWED, "Cannot skip the Boss Blind")
        self._skipped.add((g.ante, g.blind_idx))
        g.skip_blind()
        return self.gamestate()

    def rpc_play(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SELECTING_HAND")
        g = self.game
        positions = self._positions(params, "play")
        result, beaten = g.play(positions)
        self.last_play_score = result.score
        self._round_eval = beaten
        return self.gamestate()

    def rpc_discard(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SELECTING_HAND")
        if self.game.discards_left <= 0:
            raise RpcError(NOT_ALLOWED, "No discards left")
        self.game.discard(self._positions(params, "discard"))
        return self.gamestate()

    def rpc_cash_out(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("ROUND_EVAL")
        self._round_eval = False
        return self.gamestate()

    def rpc_buy(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SHOP")
        if sorted(params) != ["card"]:
            if set(params) & {"voucher", "pack"}:
                raise RpcError(NOT_ALLOWED, "This shop sells no vouchers or packs")
            raise RpcError(BAD_REQUEST, "Exactly one of card, voucher, pack is required")
        slots = self._shop_slots()
        index = params["card"]
        if not isinstance(index, int) or not 0 <= index < len(slots):
            raise RpcError(BAD_REQUEST, f"Card index out of range: {index!r}")
        if not self.game.can_buy(slots[index]):
            raise RpcError(NOT_ALLOWED, "Cannot afford it, or no joker slot is free")
        self.game.buy(slots[index])
        return self.gamestate()

    def rpc_sell(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SHOP", "SELECTING_HAND")
        index = params.get("joker")
        if not isinstance(index, int) or not 0 <= index < len(self.game.jokers):
            raise RpcError(BAD_REQUEST, f"Joker index out of range: {index!r}")
        self.game.sell(index)
        return self.gamestate()

    def rpc_reroll(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SHOP")
        if self.game.money < self.game.reroll_cost:
            raise RpcError(NOT_ALLOWED, "Not enough money to reroll")
        self.game.reroll()
        return self.gamestate()

    def rpc_next_round(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SHOP")
        self.game.leave_shop()
        return self.gamestate()

    def rpc_pack(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require("SMODS_BOOSTER_OPENED")
        return self.gamestate()

    # ---- helpers
    def state_name(self) -> str:
        g = self.game
        if g is None:
            return "MENU"
        if self._round_eval:
            return "ROUND_EVAL"
        if g.phase == PHASE_OVER:
            return "ROUND_EVAL" if g.won else "GAME_OVER"
        return {PHASE_BLIND_SELECT: "BLIND_SELECT", PHASE_PLAY: "SELECTING_HAND",
                PHASE_SHOP: "SHOP"}[g.phase]

    def _require(self, *states: str) -> None:
        if self.state_name() not in states:
            raise RpcError(INVALID_STATE, f"Method requires one of {list(states)}, "
                                          f"the game is in {self.state_name()}")

    def hand_view(self) -> list[int]:
        """The hand as the game shows it: by suit, then rank (not the simulator's order)."""
        return sorted(self.game.hand, key=lambda c: (c & 3, c >> 2))

    def _positions(self, params: dict[str, Any], verb: str) -> list[int]:
        cards = params.get("cards")
        view = self.hand_view()
        if (not isinstance(cards, list) or not 1 <= len(cards) <= 5 or len(set(cards)) != len(cards)
                or not all(isinstance(i, int) and 0 <= i < len(view) for i in cards)):
            raise RpcError(BAD_REQUEST, f"{verb}: cards must be 1-5 distinct indices into a "
                                        f"hand of {len(view)}, got {cards!r}")
        g = self.game
        chosen = [view[i] for i in cards]
        if g.forced >= 0 and g.forced not in chosen:
            raise RpcError(NOT_ALLOWED, "The forced card must be selected")
        return sorted(g.hand.index(c) for c in chosen)

    def _shop_slots(self) -> list[int]:
        return [i for i, (kind, _, _) in enumerate(self.game.shop) if kind != S.SLOT_EMPTY]

    # ---- GameState
    def gamestate(self) -> dict[str, Any]:
        g = self.game
        state = self.state_name()
        if g is None:
            return {"state": "MENU", "round_num": 0, "ante_num": 0, "money": 0, "won": False}
        playing = state == "SELECTING_HAND"
        return {
            "state": state, "round_num": g.round, "ante_num": g.ante, "money": g.money,
            "deck": self.deck, "stake": self.stake, "seed": self.seed, "won": g.won,
            "used_vouchers": {}, "tags": [],
            "hands": {name: _hand_info(g, t) for t, name in enumerate(H.HAND_NAMES)},
            "round": {"hands_left": g.hands_left, "hands_played": g.hands_played_round,
                      "discards_left": g.discards_left, "discards_used": g.discards_used,
                      "reroll_cost": g.reroll_cost, "chips": g.score,
                      "most_played_hand": H.HAND_NAMES[g.most_played]},
            "blinds": {key: self._blind(kind, state)
                       for kind, key in enumerate(("small", "big", "boss"))},
            "jokers": _area([_joker_card(j, g.joker_sell[i], debuff=i == g.disabled_joker)
                             for i, j in enumerate(g.jokers)], 5),
            "consumables": _area([], 2),
            "hand": _area([_playing_card(c, g) for c in self.hand_view()] if playing else [],
                          g.hand_size, highlighted_limit=5),
            "cards": _area([_playing_card(c, g) for c in g.deck], 52),
            "shop": _area([_shop_card(*g.shop[i]) for i in self._shop_slots()]
                          if state == "SHOP" else [], 2),
            "vouchers": _area([], 1), "packs": _area([], 2),
        }

    def _blind(self, kind: int, state: str) -> dict[str, Any]:
        g = self.game
        if kind == g.blind_idx and state == "SELECTING_HAND":
            status = "CURRENT"
        elif kind == g.blind_idx and state == "BLIND_SELECT":
            status = "SELECT"
        elif kind < g.blind_idx:
            status = "SKIPPED" if (g.ante, kind) in self._skipped else "DEFEATED"
        else:
            status = "UPCOMING"
        if kind == B.BOSS:
            key, name, effect = BOSS_KEYS[g.boss], B.BOSS_NAMES[g.boss], B.BOSS_TEXT[g.boss]
        else:
            key, name, effect = ("bl_small", "bl_big")[kind], B.BLIND_TITLES[kind], ""
        blind = {"key": key, "type": ("SMALL", "BIG", "BOSS")[kind], "status": status,
                 "name": name, "effect": effect,
                 "score": B.blind_target(g.ante, kind, g.boss, g.stake)}
        if kind < B.BOSS:
            tag = g.tags[kind]
            blind["tag"] = {"key": TAG_KEYS[tag], "name": B.TAG_NAMES[tag],
                            "effect": B.TAG_TEXT[tag]}
        return blind


def _area(cards: list[dict[str, Any]], limit: int, **extra: Any) -> dict[str, Any]:
    return {"count": len(cards), "limit": limit, **extra, "cards": cards}


def _hand_info(g: BalatroGame, t: int) -> dict[str, Any]:
    chips, mult, d_chips, d_mult = H.HAND_BASE[t]
    level = g.levels[t]
    return {"order": H.N_HAND_TYPES - t, "level": level, "chips": chips + d_chips * (level - 1),
            "mult": mult + d_mult * (level - 1), "played": g.played_counts[t],
            "played_this_round": g.round_types.count(t), "example": []}


def _playing_card(c: int, g: BalatroGame) -> dict[str, Any]:
    suit, rank = SUIT_LETTERS[c & 3], RANK_LETTERS[c >> 2]
    return {"id": c + 1, "key": f"{suit}_{rank}", "set": "DEFAULT",
            "label": f"{RANK_WORDS[c >> 2]} of {SUIT_NAMES[c & 3]}",
            "value": {"suit": suit, "rank": rank, "effect": ""}, "modifier": {},
            "state": {"debuff": c in g.debuffed, "hidden": c in g.face_down,
                      "highlight": c == g.forced},
            "cost": {"sell": 1, "buy": 0}}


def _joker_card(j: int, sell: int, *, debuff: bool = False, price: int = 0) -> dict[str, Any]:
    return {"id": 100 + j, "key": JOKER_KEYS[j], "set": "JOKER", "label": J.JOKER_NAMES[j],
            "value": {"effect": J.JOKER_TEXT[j]}, "modifier": {},
            "state": {"debuff": debuff}, "cost": {"sell": sell, "buy": price}}


def _shop_card(kind: int, item: int, price: int) -> dict[str, Any]:
    if kind == S.SLOT_JOKER:
        return _joker_card(item, J.sell_value(price), price=price)
    return {"id": 200 + item, "key": PLANET_KEYS[item], "set": "PLANET",
            "label": H.PLANET_NAMES[item], "value": {"effect": f"level up {H.HAND_NAMES[item]}"},
            "modifier": {}, "state": {}, "cost": {"sell": 1, "buy": price}}
