"""Pokemon Red: GameBoyEnv plus the RAM map, the progress rewards and an LLM-readable summary.

Addresses and reward terms follow /work/shared/reference/pokemon_red_pyboy.md (pret/pokered
symbols; PokemonRedExperiments v2). The ROM is the user's own; its hash is checked so a
wrong file fails at start-up with a clear message instead of training on garbage.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Optional

import numpy as np
from gymnasium import spaces

from pipeline.envs.gameboy import DEFAULT_BUTTONS, GameBoyEnv, GameBoyEnvConfig, POPCOUNT

POKEMON_RED_SHA1 = "ea9bcae617fdf159b045185467ae58b2e4a48b9a"
POKEMON_RED_SHA256 = "5ca7ba01642a3b27b0cc0b5349b52792795b62d3ed977e98a09390659af96b7b"

# RAM map (pokered.sym).
X_COORD, Y_COORD, MAP_ID = 0xD362, 0xD361, 0xD35E
IN_BATTLE = 0xD057  # 0 none, 1 wild, 2 trainer
PARTY_COUNT = 0xD163
PARTY_STRIDE = 0x2C
HP = 0xD16C  # 2 bytes big-endian, + k * PARTY_STRIDE
LEVEL = 0xD18C
MAX_HP = 0xD18D
BADGES = 0xD356
MONEY = 0xD347  # 3 bytes BCD, big-endian
POKEDEX_OWNED = (0xD2F7, 0xD30A)  # [start, end)
POKEDEX_SEEN = (0xD30A, 0xD31D)
EVENT_FLAGS = (0xD747, 0xD887)
MUSEUM_TICKET = (0xD754, 0)  # byte, bit: set early in every run, so it earns nothing
MAX_PARTY = 6
POKEDEX_SIZE = 151
EVENT_FLAG_COUNT = (EVENT_FLAGS[1] - EVENT_FLAGS[0]) * 8


@dataclass
class PokemonRewardWeights:
    """Weights of the progress rewards (PokemonRedExperiments v2)."""

    event: float = 4.0  # per event flag newly set (beyond the most seen this episode)
    heal: float = 10.0  # per full party HP healed (fraction of total max HP)
    badge: float = 10.0  # per badge newly obtained
    explore: float = 0.1  # per (map, x, y) first visited this episode
    stuck: float = -0.05  # per step on a tile visited at least stuck_visits times
    stuck_visits: int = 600  # visits to one tile before the stuck penalty applies


@dataclass
class PokemonRedEnvConfig(GameBoyEnvConfig):
    """GameBoyEnvConfig with Pokemon Red's defaults and reward weights."""

    _target_: str = "pipeline.envs.pokemon_red.PokemonRedEnv"
    name: str = "pokemon_red"
    noop: bool = False  # v2 has no no-op action
    max_steps: int = 20480  # steps per episode before truncation
    check_rom_hash: bool = True  # refuse ROMs whose sha1 is not Pokemon Red's (false: homebrew test ROMs)
    ram_obs: bool = True  # observation is a Dict with the RAM-map features; false: the screen only
    weights: PokemonRewardWeights = field(default_factory=PokemonRewardWeights)


@dataclass
class PokemonState:
    """The RAM map, read once per step."""

    x: int
    y: int
    map_id: int
    in_battle: int
    party_size: int
    levels: list[int]
    hp: list[int]
    max_hp: list[int]
    badges: int  # number of badges
    events: int  # event flags set (the museum ticket excluded)
    money: int
    pokedex_owned: int
    pokedex_seen: int

    @property
    def hp_fraction(self) -> float:
        total = sum(self.max_hp)
        return sum(self.hp) / total if total else 0.0


def read_state(memory: Any) -> PokemonState:
    """Decode the RAM map from PyBoy's `memory` (anything indexable by address and slice)."""

    def byte(address: int) -> int:
        return int(memory[address])

    def word(address: int) -> int:  # big-endian, as Pokemon Red stores HP
        return (byte(address) << 8) | byte(address + 1)

    def bits(start: int, end: int) -> int:
        return int(POPCOUNT[np.asarray(memory[start:end], dtype=np.uint8)].sum())

    party = min(byte(PARTY_COUNT), MAX_PARTY)
    offsets = [k * PARTY_STRIDE for k in range(party)]
    museum = (byte(MUSEUM_TICKET[0]) >> MUSEUM_TICKET[1]) & 1
    money = 0
    for address in range(MONEY, MONEY + 3):
        money = money * 100 + 10 * (byte(address) >> 4) + (byte(address) & 0x0F)
    return PokemonState(
        x=byte(X_COORD), y=byte(Y_COORD), map_id=byte(MAP_ID), in_battle=byte(IN_BATTLE),
        party_size=party,
        levels=[byte(LEVEL + o) for o in offsets],
        hp=[word(HP + o) for o in offsets],
        max_hp=[word(MAX_HP + o) for o in offsets],
        badges=int(POPCOUNT[byte(BADGES)]),
        events=bits(*EVENT_FLAGS) - museum,
        money=money,
        pokedex_owned=bits(*POKEDEX_OWNED),
        pokedex_seen=bits(*POKEDEX_SEEN),
    )


class PokemonRedEnv(GameBoyEnv):
    """Pokemon Red with v2's rewards: events, healing, badges, exploration, a stuck penalty."""

    rom_hint = "your Pokemon Red ROM"
    N_FEATURES = 5 + 2 * MAX_PARTY + 8 + 4  # see _ram_observation

    def __init__(
        self,
        rom_path: str,
        *,
        check_rom_hash: bool = True,
        ram_obs: bool = True,
        weights: Optional[Any] = None,
        buttons: Optional[list[str]] = None,
        noop: bool = False,
        max_steps: int = 20480,
        **kwargs: Any,
    ) -> None:
        self.check_rom_hash = bool(check_rom_hash)
        self.ram_obs = bool(ram_obs)
        self.weights = self._parse_weights(weights)
        self._seen: set[tuple[int, int, int]] = set()
        self._visits: dict[tuple[int, int, int], int] = {}
        self._max_events = self._max_badges = 0
        self._last_hp = 0.0
        self._last_party = 0
        self._state: Optional[PokemonState] = None
        super().__init__(rom_path, buttons=list(DEFAULT_BUTTONS) if buttons is None else buttons,
                         noop=noop, max_steps=max_steps, **kwargs)

    @staticmethod
    def _parse_weights(weights: Any) -> PokemonRewardWeights:
        if weights is None:
            return PokemonRewardWeights()
        if is_dataclass(weights) and not isinstance(weights, type):
            weights = asdict(weights)
        if not isinstance(weights, Mapping) and not hasattr(weights, "keys"):
            raise ValueError(f"env.weights: {weights!r} is not a mapping "
                             "(expected event, heal, badge, explore, stuck, stuck_visits)")
        known = PokemonRewardWeights.__dataclass_fields__
        values = {}
        for key in weights.keys():
            if key not in known:
                raise ValueError(f"env.weights.{key}: unknown weight (expected one of {', '.join(known)})")
            values[key] = int(weights[key]) if key == "stuck_visits" else float(weights[key])
        return PokemonRewardWeights(**values)

    def _check_rom(self, rom: bytes) -> None:
        if not self.check_rom_hash:
            return
        digest = hashlib.sha1(rom).hexdigest()
        if digest != POKEMON_RED_SHA1 and hashlib.sha256(rom).hexdigest() != POKEMON_RED_SHA256:
            title = rom[0x134:0x144].split(b"\0")[0].decode("ascii", "replace").strip()
            raise ValueError(
                f"env.rom_path: {self.rom_path} is not Pokemon Red (title {title!r}, sha1 {digest}; expected sha1 "
                f"{POKEMON_RED_SHA1}) - set env.rom_path to your Pokemon Red ROM, "
                f"or env.check_rom_hash=false for a homebrew test ROM")

    # ------------------------------------------------------------------ observation

    def _ram_space(self) -> Optional[spaces.Space]:
        if not self.ram_obs:
            return super()._ram_space()
        n = self.N_FEATURES + len(self.ram_addresses)
        return spaces.Box(0.0, 1.0, (n,), dtype=np.float32)

    def _ram_observation(self) -> np.ndarray:
        if not self.ram_obs:
            return super()._ram_observation()
        s = self._state
        levels = np.zeros(MAX_PARTY, dtype=np.float32)
        hp = np.zeros(MAX_PARTY, dtype=np.float32)
        levels[:s.party_size] = np.asarray(s.levels, dtype=np.float32) / 100.0
        hp[:s.party_size] = [h / m if m else 0.0 for h, m in zip(s.hp, s.max_hp)]
        badge_bits = np.unpackbits(np.array([self.pyboy.memory[BADGES]], dtype=np.uint8))[::-1]
        memory = self.pyboy.memory
        extra = np.array([memory[a] for a in self.ram_addresses], dtype=np.float32) / 255.0
        features = np.concatenate([
            np.array([s.x / 255.0, s.y / 255.0, s.map_id / 255.0, s.in_battle / 2.0, s.party_size / MAX_PARTY],
                     dtype=np.float32),
            levels, hp, badge_bits.astype(np.float32),
            np.array([s.events / EVENT_FLAG_COUNT, s.money / 999999.0,
                      s.pokedex_owned / POKEDEX_SIZE, s.pokedex_seen / POKEDEX_SIZE], dtype=np.float32),
            extra,
        ])
        return np.clip(features, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ reward

    def _game_reset(self) -> None:
        s = self._state = read_state(self.pyboy.memory)
        tile = (s.map_id, s.x, s.y)
        self._seen = {tile}
        self._visits = {tile: 1}
        self._max_events, self._max_badges = s.events, s.badges
        self._last_hp, self._last_party = s.hp_fraction, s.party_size

    def _game_reward(self) -> float:
        w = self.weights
        s = self._state = read_state(self.pyboy.memory)
        reward = 0.0
        if s.events > self._max_events:
            reward += w.event * (s.events - self._max_events)
            self._max_events = s.events
        if s.badges > self._max_badges:
            reward += w.badge * (s.badges - self._max_badges)
            self._max_badges = s.badges
        hp = s.hp_fraction
        # A higher HP fraction with the same party is healing; from 0 it is a whiteout, not a heal.
        if hp > self._last_hp and s.party_size == self._last_party and self._last_hp > 0:
            reward += w.heal * (hp - self._last_hp)
        self._last_hp, self._last_party = hp, s.party_size
        tile = (s.map_id, s.x, s.y)
        if tile not in self._seen:
            self._seen.add(tile)
            reward += w.explore
        visits = self._visits[tile] = self._visits.get(tile, 0) + 1
        if visits >= w.stuck_visits:
            reward += w.stuck
        return reward

    # ------------------------------------------------------------------ info

    def _game_metrics(self) -> dict[str, float]:
        s = self._state
        metrics = super()._game_metrics()
        if s is None:
            return metrics
        metrics.update({
            "badges": float(s.badges),
            "events": float(s.events),
            "unique_coords": float(len(self._seen)),
            "max_level": float(max(s.levels, default=0)),
            "map_id": float(s.map_id),
            "x": float(s.x),
            "y": float(s.y),
            "in_battle": float(s.in_battle),
            "party_size": float(s.party_size),
            "hp_fraction": float(s.hp_fraction),
            "money": float(s.money),
            "pokedex_owned": float(s.pokedex_owned),
            "pokedex_seen": float(s.pokedex_seen),
        })
        return metrics

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        s = self._state
        info.update({"x": s.x, "y": s.y, "xy": (s.x, s.y), "map_id": s.map_id, "badges": s.badges,
                     "in_battle": s.in_battle, "events": s.events, "money": s.money,
                     "party_levels": list(s.levels), "party_hp": list(s.hp)})
        return info

    # ------------------------------------------------------------------ resume

    def _game_state(self) -> dict[str, Any]:
        return {
            "seen": [list(t) for t in sorted(self._seen)],
            "visits": [[*t, n] for t, n in sorted(self._visits.items())],
            "max_events": self._max_events,
            "max_badges": self._max_badges,
            "last_hp": self._last_hp,
            "last_party": self._last_party,
        }

    def _load_game_state(self, state: dict[str, Any]) -> None:
        self._seen = {tuple(int(v) for v in t) for t in state["seen"]}
        self._visits = {(int(m), int(x), int(y)): int(n) for m, x, y, n in state["visits"]}
        self._max_events = int(state["max_events"])
        self._max_badges = int(state["max_badges"])
        self._last_hp = float(state["last_hp"])
        self._last_party = int(state["last_party"])
        self._state = read_state(self.pyboy.memory)

    # ------------------------------------------------------------------ text interface

    def text_view(self) -> str:
        s = self._state if self._state is not None else read_state(self.pyboy.memory)
        battle = {0: "not in battle", 1: "in a wild battle", 2: "in a trainer battle"}.get(s.in_battle, "in battle")
        party = ", ".join(f"L{lv} {h}/{m} HP" for lv, h, m in zip(s.levels, s.hp, s.max_hp)) or "empty"
        lines = [
            f"Pokemon Red: step {self._steps} of {self.max_steps}.",
            f"Map {s.map_id}, position x={s.x} y={s.y}, {battle}.",
            f"Party ({s.party_size}): {party}.",
            f"Badges: {s.badges} of 8. Money: {s.money}. Pokedex: {s.pokedex_owned} owned, {s.pokedex_seen} seen.",
            f"Event flags set: {s.events}. Tiles explored this episode: {len(self._seen)}.",
        ]
        if self._last_action is not None:
            lines.append(f"Last action: {self.action_to_text(self._last_action)}.")
        return "\n".join(lines)
