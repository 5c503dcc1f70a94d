"""Any Game Boy ROM as a Gymnasium env, through PyBoy (imported lazily).

One step presses a button for `press_frames` frames, releases it and lets the game run to
`frames_per_action` frames in all; only the last frame is rendered (PyBoy's frame skip),
which is where most of the speed comes from. The observation is the last `frame_stack`
rendered screens, greyscale and downscaled; with `ram_features` it becomes a Dict that
adds those RAM bytes. The reward comes from RAM expressions given in the config
(`RamRewardConfig`): a homebrew game can be trained on with YAML only, nothing is eval'd.
"""
from __future__ import annotations

import base64
import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pipeline.envs.text import IllegalActionError

SCREEN_H, SCREEN_W = 144, 160
BUTTON_NAMES = ("a", "b", "start", "select", "up", "down", "left", "right")
DEFAULT_BUTTONS = ["down", "left", "right", "up", "a", "b", "start"]
NOOP_TEXT = "wait"
MIN_ROM_SIZE = 0x8000
BOOT_FRAMES_MAX = 600  # PyBoy's DMG boot ROM hands over after about 64 frames

REWARD_KINDS = ("value", "delta", "increase")
REWARD_DECODES = ("uint", "bcd", "bits")
ENDIANS = ("little", "big")

POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


@dataclass
class RamRewardConfig:
    """One reward term read from RAM: reward += scale * f(number at `address`)."""

    address: str = "???"  # first byte, "0xC0A0" (hex) or decimal; WRAM is C000-DFFF
    kind: str = "delta"  # value: the number each step; delta: its change; increase: positive changes only
    scale: float = 1.0  # reward per unit
    size: int = 1  # bytes read from `address` on (1-4)
    endian: str = "little"  # byte order when size > 1: little (the CPU's) or big
    decode: str = "uint"  # uint: unsigned integer; bcd: binary-coded decimal; bits: number of set bits
    name: Optional[str] = None  # key in info["game"] (logged as game/<name>); default ram_<address>


@dataclass
class GameBoyEnvConfig:
    """Constructor parameters of GameBoyEnv, as the `env` config group's schema."""

    _target_: str = "pipeline.envs.gameboy.GameBoyEnv"
    name: str = "gameboy"  # label for run names, tags and the MLflow experiment (not passed to the env)
    rom_path: str = "???"  # the .gb/.gbc ROM file; required, never committed
    save_state: Optional[str] = None  # PyBoy save-state file episodes start from; None: just after boot
    # one action per entry; "a+right" holds both buttons
    buttons: list[str] = field(default_factory=lambda: list(DEFAULT_BUTTONS))
    noop: bool = True  # add a "press nothing" action after the buttons
    press_frames: int = 8  # frames a button is held
    frames_per_action: int = 24  # frames per step in all (held + released)
    max_steps: int = 2048  # steps per episode before truncation
    screen_height: int = 72  # observation rows (144 / 2)
    screen_width: int = 80  # observation columns (160 / 2)
    frame_stack: int = 3  # last rendered screens stacked in the observation
    ram_features: list[str] = field(default_factory=list)  # RAM bytes added to the observation
    reward: list[RamRewardConfig] = field(default_factory=list)  # reward terms read from RAM
    noop_max: int = 0  # episodes start after 0..noop_max seeded no-op steps
    sound: bool = False  # emulate sound (about 1.5x slower)
    window: str = "null"  # "null" (headless) or "SDL2" to watch
    emulation_speed: int = 0  # 0: as fast as possible; 1: real time (with a window)
    cgb: Optional[bool] = None  # force Game Boy Color mode on/off; None: from the ROM header
    render_mode: Optional[str] = "rgb_array"  # render() returns the 144x160x3 screen


# ----------------------------------------------------------------------------- helpers


def parse_address(value: Any, where: str) -> int:
    """An address from YAML: an int, "0xD362" or a decimal string, within 0000-FFFF."""
    try:
        address = value if isinstance(value, int) else int(str(value).strip(), 0)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not an address "
                         "(expected hex like \"0xD362\" or an int)") from None
    if not 0 <= address <= 0xFFFF:
        raise ValueError(f"{where}: {value!r} is outside the Game Boy address space (expected 0x0000-0xFFFF)")
    return address


def decode_number(raw: Sequence[int], decode: str = "uint", endian: str = "little") -> int:
    """Bytes read from RAM as a number: unsigned, binary-coded decimal or set-bit count."""
    if decode == "bits":
        return int(sum(POPCOUNT[b] for b in raw))
    ordered = raw if endian == "big" else list(reversed(raw))
    if decode == "bcd":
        total = 0
        for b in ordered:
            total = total * 100 + 10 * (b >> 4) + (b & 0x0F)
        return total
    total = 0
    for b in ordered:
        total = (total << 8) | b
    return total


def _as_plain(value: Any) -> Any:
    """A dataclass, DictConfig or ListConfig as plain dicts and lists (duck-typed: no omegaconf import)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        return {str(k): _as_plain(value[k]) for k in value.keys()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Sequence) or (hasattr(value, "__iter__") and hasattr(value, "__len__")):
        return [_as_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RamTerm:
    """A validated RamRewardConfig."""

    address: int
    kind: str
    scale: float
    size: int
    endian: str
    decode: str
    name: str

    @classmethod
    def parse(cls, raw: Any, where: str) -> RamTerm:
        spec = _as_plain(raw)
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: {raw!r} is not a mapping "
                             "(expected {address: \"0xC0A0\", kind: delta, scale: 1.0})")
        known = set(RamRewardConfig.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} "
                             f"(expected some of {', '.join(sorted(known))})")
        defaults = asdict(RamRewardConfig())
        spec = {**defaults, **spec}
        address = parse_address(spec["address"], f"{where}.address")
        kind, decode, endian = str(spec["kind"]), str(spec["decode"]), str(spec["endian"])
        for key, value, allowed in (("kind", kind, REWARD_KINDS), ("decode", decode, REWARD_DECODES),
                                    ("endian", endian, ENDIANS)):
            if value not in allowed:
                raise ValueError(f"{where}.{key}: {value!r} is not one of {', '.join(allowed)}")
        size = int(spec["size"])
        if not 1 <= size <= 4 or address + size > 0x10000:
            raise ValueError(f"{where}.size: {size} is not 1-4 bytes inside the address space")
        name = spec["name"] or f"ram_{address:04x}"
        if not re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
            raise ValueError(f"{where}.name: {name!r} must be letters, digits, _ . - or / (a metric key)")
        return cls(address, kind, float(spec["scale"]), size, endian, decode, name)


def read_rom(rom_path: Any, field_name: str = "env.rom_path", hint: str = "your Game Boy ROM") -> bytes:
    """The ROM's bytes, or a one-line ValueError naming the field, the value and what was expected."""
    if rom_path is None or str(rom_path).strip() in ("", "???"):
        raise ValueError(f"{field_name}: not set (set {field_name} to {hint}, e.g. {field_name}=/path/to/game.gb)")
    path = Path(str(rom_path)).expanduser()
    if not path.exists():
        raise ValueError(f"{field_name}: {path} does not exist (set {field_name} to {hint})")
    if not path.is_file():
        raise ValueError(f"{field_name}: {path} is not a file (set {field_name} to {hint}, a .gb/.gbc file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{field_name}: {path} cannot be read ({exc.strerror or exc}); "
                         f"expected {hint}, readable") from None
    if len(data) < MIN_ROM_SIZE:
        raise ValueError(f"{field_name}: {path} is {len(data)} bytes, not a Game Boy ROM "
                         f"(expected at least {MIN_ROM_SIZE} bytes with a cartridge header)")
    checksum = 0
    for b in data[0x134:0x14D]:
        checksum = (checksum - b - 1) & 0xFF
    if data[0x14D] != checksum:
        raise ValueError(f"{field_name}: {path} is not a Game Boy ROM (header checksum at 0x14D is "
                         f"0x{data[0x14D]:02X}, expected 0x{checksum:02X})")
    return data


def read_save_state(save_state: Any, field_name: str = "env.save_state") -> bytes:
    path = Path(str(save_state)).expanduser()
    hint = f"set {field_name} to a file written by PyBoy.save_state, or null"
    if not path.is_file():
        raise ValueError(f"{field_name}: {path} {'is not a file' if path.exists() else 'does not exist'} ({hint})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{field_name}: {path} cannot be read ({exc.strerror or exc}); {hint}") from None
    if not data:
        raise ValueError(f"{field_name}: {path} is empty ({hint})")
    return data


def make_downscaler(height: int, width: int):
    """A function from a (144, 160) uint8 screen to (height, width): block mean for
    divisors of the screen size (summed strided slices, no float pass), nearest pixel otherwise."""
    if not (1 <= height <= SCREEN_H and 1 <= width <= SCREEN_W):
        raise ValueError(f"env.screen_height/screen_width: {height}x{width} is outside 1x1..{SCREEN_H}x{SCREEN_W}")
    if SCREEN_H % height == 0 and SCREEN_W % width == 0:
        fy, fx = SCREEN_H // height, SCREEN_W // width
        if fy == fx == 1:
            return lambda grey, out: np.copyto(out, grey)
        n = fy * fx
        acc = np.empty((height, width), dtype=np.uint16)

        def block_mean(grey: np.ndarray, out: np.ndarray) -> None:
            acc[...] = grey[0::fy, 0::fx]
            for dy in range(fy):
                for dx in range(fx):
                    if dy or dx:
                        np.add(acc, grey[dy::fy, dx::fx], out=acc)
            np.floor_divide(acc, n, out=out, casting="unsafe")

        return block_mean
    rows = (np.arange(height) * SCREEN_H) // height
    cols = (np.arange(width) * SCREEN_W) // width
    return lambda grey, out: np.copyto(out, grey[rows[:, None], cols[None, :]])


# ----------------------------------------------------------------------------- the env


class GameBoyEnv(gym.Env):
    """A Game Boy game: discrete button presses in, stacked greyscale screens out."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}
    rom_hint = "your Game Boy ROM"

    def __init__(
        self,
        rom_path: str,
        save_state: Optional[str] = None,
        buttons: Optional[Sequence[str]] = None,
        noop: bool = True,
        press_frames: int = 8,
        frames_per_action: int = 24,
        max_steps: int = 2048,
        screen_height: int = 72,
        screen_width: int = 80,
        frame_stack: int = 3,
        ram_features: Optional[Sequence[Any]] = None,
        reward: Optional[Sequence[Any]] = None,
        noop_max: int = 0,
        sound: bool = False,
        window: str = "null",
        emulation_speed: int = 0,
        cgb: Optional[bool] = None,
        render_mode: Optional[str] = "rgb_array",
    ) -> None:
        super().__init__()
        self.rom = read_rom(rom_path, hint=self.rom_hint)
        self.rom_path = str(Path(str(rom_path)).expanduser())
        self._check_rom(self.rom)
        self.save_state_path = None if save_state in (None, "") else str(save_state)
        start_state = read_save_state(save_state) if self.save_state_path else None

        self.buttons = self._parse_buttons(DEFAULT_BUTTONS if buttons is None else buttons)
        self.noop = bool(noop)
        self.press_frames, self.frames_per_action = int(press_frames), int(frames_per_action)
        if not 1 <= self.press_frames < self.frames_per_action:
            raise ValueError(f"env.press_frames: {press_frames} must be at least 1 and less than "
                             f"env.frames_per_action ({frames_per_action}) so the button is released within a step")
        limits = (("max_steps", max_steps, 1), ("frame_stack", frame_stack, 1), ("noop_max", noop_max, 0))
        for name, value, low in limits:
            if int(value) < low:
                raise ValueError(f"env.{name}: {value} must be at least {low}")
        self.max_steps, self.frame_stack, self.noop_max = int(max_steps), int(frame_stack), int(noop_max)
        if render_mode not in (None, *self.metadata["render_modes"]):
            modes = ", ".join(self.metadata["render_modes"])
            raise ValueError(f"env.render_mode: {render_mode!r} is not one of None, {modes}")
        self.render_mode = render_mode
        self.ram_addresses = [parse_address(a, f"env.ram_features[{i}]")
                              for i, a in enumerate(_as_plain(ram_features or []))]
        self.reward_terms = [RamTerm.parse(t, f"env.reward[{i}]")
                             for i, t in enumerate(_as_plain(reward or []))]

        self.screen_shape = (int(screen_height), int(screen_width))
        self._downscale = make_downscaler(*self.screen_shape)
        self._colour = bool(cgb) if cgb is not None else bool(self.rom[0x143] & 0x80)
        self._frames = np.zeros((self.frame_stack, *self.screen_shape), dtype=np.uint8)

        self.action_space = spaces.Discrete(len(self.buttons) + int(self.noop))
        screen_space = spaces.Box(0, 255, (self.frame_stack, *self.screen_shape), dtype=np.uint8)
        ram_space = self._ram_space()
        self.observation_space = screen_space if ram_space is None else spaces.Dict(
            {"screen": screen_space, "ram": ram_space})

        self.pyboy = self._start_pyboy(window, bool(sound), cgb, int(emulation_speed))
        try:
            self._initial_state = self._initial_pyboy_state(start_state)
        except Exception:
            self.close()
            raise
        self._steps = 0
        self._frame_count = 0
        self._prev_terms = [0] * len(self.reward_terms)
        self._last_action: Optional[int] = None

    # ------------------------------------------------------------------ construction

    def _check_rom(self, rom: bytes) -> None:
        """Subclasses refuse ROMs they cannot play (PokemonRedEnv checks the hash)."""

    @staticmethod
    def _parse_buttons(buttons: Sequence[str]) -> list[tuple[str, ...]]:
        parsed = []
        for i, entry in enumerate(_as_plain(list(buttons))):
            names = tuple(part.strip().lower() for part in str(entry).split("+"))
            bad = [n for n in names if n not in BUTTON_NAMES]
            if bad or not names:
                raise ValueError(f"env.buttons[{i}]: {entry!r} is not a button (expected one of "
                                 f"{', '.join(BUTTON_NAMES)}, or several joined by +)")
            parsed.append(names)
        if not parsed:
            raise ValueError("env.buttons: [] is empty (expected at least one button, e.g. [a, b, up, down])")
        return parsed

    def _start_pyboy(self, window: str, sound: bool, cgb: Optional[bool], speed: int):
        with warnings.catch_warnings():  # pysdl2-dll announces its bundled binaries on import
            warnings.filterwarnings("ignore", message="Using SDL2 binaries")
            from pyboy import PyBoy

        try:
            pyboy = PyBoy(self.rom_path, window=window, sound_emulated=sound, cgb=cgb, log_level="ERROR")
        except KeyError as exc:
            raise ValueError(f"env.window: {window!r} is not a PyBoy window ({exc.args[0]})") from None
        except Exception as exc:
            raise ValueError(f"env.rom_path: {self.rom_path} could not be started by PyBoy "
                             f"({type(exc).__name__}: {exc}); expected {self.rom_hint}") from None
        pyboy.set_emulation_speed(speed)
        return pyboy

    def _initial_pyboy_state(self, start_state: Optional[bytes]) -> bytes:
        """The state every episode starts from: the save state, or the moment the boot ROM hands over."""
        if start_state is not None:
            try:
                self.pyboy.load_state(io.BytesIO(start_state))
            except Exception as exc:
                raise ValueError(f"env.save_state: {self.save_state_path} could not be loaded by PyBoy "
                                 f"({type(exc).__name__}: {exc}); expected a state saved by PyBoy 2.x "
                                 "for this ROM") from None
        else:
            cartridge_page = list(self.rom[:0x100])
            for _ in range(BOOT_FRAMES_MAX):
                self.pyboy.tick(1, render=True, sound=False)
                if self.pyboy.memory[0:0x100] == cartridge_page:  # boot ROM unmapped
                    break
        buffer = io.BytesIO()
        self.pyboy.save_state(buffer)
        return buffer.getvalue()

    # ------------------------------------------------------------------ spaces and observations

    def _ram_space(self) -> Optional[spaces.Space]:
        if not self.ram_addresses:
            return None
        return spaces.Box(0, 255, (len(self.ram_addresses),), dtype=np.uint8)

    def _ram_observation(self) -> np.ndarray:
        memory = self.pyboy.memory
        return np.array([memory[a] for a in self.ram_addresses], dtype=np.uint8)

    def _grab_screen(self) -> np.ndarray:
        rgba = self.pyboy.screen.ndarray
        if self._colour:
            grey = ((rgba[:, :, 0].astype(np.uint16) * 77 + rgba[:, :, 1].astype(np.uint16) * 150
                     + rgba[:, :, 2].astype(np.uint16) * 29) >> 8).astype(np.uint8)
        else:
            grey = rgba[:, :, 0]  # the DMG palette is grey: R = G = B
        out = np.empty(self.screen_shape, dtype=np.uint8)
        self._downscale(grey, out)
        return out

    def _observation(self) -> Any:
        screen = self._frames.copy()
        if isinstance(self.observation_space, spaces.Dict):
            return {"screen": screen, "ram": self._ram_observation()}
        return screen

    # ------------------------------------------------------------------ reward and info

    def _read_term(self, term: RamTerm) -> int:
        memory = self.pyboy.memory
        raw = [memory[term.address + i] for i in range(term.size)]
        return decode_number(raw, term.decode, term.endian)

    def _ram_reward(self) -> float:
        total = 0.0
        for i, term in enumerate(self.reward_terms):
            value = self._read_term(term)
            if term.kind == "value":
                total += term.scale * value
            elif term.kind == "delta":
                total += term.scale * (value - self._prev_terms[i])
            elif value > self._prev_terms[i]:
                total += term.scale * (value - self._prev_terms[i])
            self._prev_terms[i] = value
        return total

    def _game_reset(self) -> None:
        """Hook: a subclass resets its episode bookkeeping (the RAM of the start state is readable)."""

    def _game_reward(self) -> float:
        """Hook: a subclass's reward from the game state after a step."""
        return 0.0

    def _game_metrics(self) -> dict[str, float]:
        metrics = {"frames": float(self._frame_count), "steps": float(self._steps)}
        for term, value in zip(self.reward_terms, self._prev_terms):
            metrics[term.name] = float(value)
        return metrics

    def _info(self) -> dict[str, Any]:
        return {"action_mask": np.ones(self.action_space.n, dtype=np.bool_), "game": self._game_metrics()}

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.pyboy.load_state(io.BytesIO(self._initial_state))
        self._steps = 0
        self._frame_count = 0
        self._last_action = None
        noops = int(self.np_random.integers(0, self.noop_max + 1)) if self.noop_max else 0
        if noops:
            self.pyboy.tick(noops * self.frames_per_action, render=True, sound=False)
        self._frames[:] = self._grab_screen()
        self._prev_terms = [self._read_term(t) for t in self.reward_terms]
        self._game_reset()
        return self._observation(), self._info()

    def step(self, action: Any):
        action = int(action)
        if not 0 <= action < self.action_space.n:
            raise IllegalActionError(f"action {action} is outside 0..{self.action_space.n - 1} "
                                     f"({self.describe_actions()})")
        pyboy = self.pyboy
        names = self.buttons[action] if action < len(self.buttons) else ()
        for name in names:
            pyboy.button_press(name)
        pyboy.tick(self.press_frames, render=False, sound=False)
        for name in names:
            pyboy.button_release(name)
        pyboy.tick(self.frames_per_action - self.press_frames, render=True, sound=False)
        self._steps += 1
        self._frame_count += self.frames_per_action
        self._last_action = action

        self._frames[:-1] = self._frames[1:]
        self._frames[-1] = self._grab_screen()
        reward = self._ram_reward() + self._game_reward()
        truncated = self._steps >= self.max_steps
        return self._observation(), float(reward), False, truncated, self._info()

    def render(self) -> Optional[np.ndarray]:
        if self.render_mode is None:
            return None
        return self.pyboy.screen.ndarray[:, :, :3].copy()

    def close(self) -> None:
        pyboy = getattr(self, "pyboy", None)
        if pyboy is not None:
            pyboy.stop(save=False)  # never write a .ram file next to the user's ROM
            self.pyboy = None

    # ------------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue mid-episode, as Python primitives and bytes."""
        buffer = io.BytesIO()
        self.pyboy.save_state(buffer)
        return {
            "pyboy_state": buffer.getvalue(),
            "steps": self._steps,
            "frame_count": self._frame_count,
            "frames": self._frames.tobytes(),
            "prev_terms": list(self._prev_terms),
            "last_action": self._last_action,
            "np_random": self.np_random.bit_generator.state,
            "game": self._game_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pyboy.load_state(io.BytesIO(state["pyboy_state"]))
        self._steps = int(state["steps"])
        self._frame_count = int(state["frame_count"])
        self._frames[:] = np.frombuffer(state["frames"], dtype=np.uint8).reshape(self._frames.shape)
        self._prev_terms = [int(v) for v in state["prev_terms"]]
        self._last_action = state["last_action"]
        self.np_random.bit_generator.state = state["np_random"]
        self._load_game_state(state["game"])

    def _game_state(self) -> dict[str, Any]:
        """Hook: a subclass's episode bookkeeping as primitives."""
        return {}

    def _load_game_state(self, state: dict[str, Any]) -> None:
        """Hook: the inverse of `_game_state`."""

    # ------------------------------------------------------------------ text interface (TextGame)

    def action_to_text(self, action: int) -> str:
        action = int(action)
        if action < len(self.buttons):
            return "press " + "+".join(self.buttons[action])
        if self.noop and action == len(self.buttons):
            return NOOP_TEXT
        raise IllegalActionError(f"action {action} is outside 0..{self.action_space.n - 1}")

    def describe_actions(self) -> str:
        answers = [self.action_to_text(a) for a in range(self.action_space.n)]
        return ("Answer with exactly one of: " + " | ".join(answers)
                + f". Each holds the button(s) for {self.press_frames} frames, then the game runs to "
                + f"{self.frames_per_action} frames.")

    def parse_action(self, text: str) -> int:
        answers = {self.action_to_text(a): a for a in range(self.action_space.n)}
        cleaned = re.sub(r"[^a-z0-9+ ]", " ", str(text).lower())
        cleaned = " ".join(cleaned.split())
        bare = cleaned.removeprefix("press ").strip()
        for answer, action in answers.items():
            if cleaned == answer or bare == answer.removeprefix("press "):
                return action
        if self.noop and bare in ("noop", "no op", "nothing", "none", "wait"):
            return answers[NOOP_TEXT]
        if bare.isdigit() and int(bare) < self.action_space.n:
            return int(bare)
        mentioned = {answers[a] for a in answers if re.search(rf"\b{re.escape(a)}\b", cleaned)}
        if len(mentioned) == 1:
            return mentioned.pop()
        raise IllegalActionError(f"{str(text)[:80]!r} is not an action; answer with exactly one of: "
                                 + " | ".join(answers))

    def text_view(self) -> str:
        title = self.pyboy.cartridge_title or "Game Boy"
        lines = [f"{title}: step {self._steps} of {self.max_steps}, frame {self._frame_count}."]
        if self._last_action is not None:
            lines.append(f"Last action: {self.action_to_text(self._last_action)}.")
        if self.ram_addresses:
            memory = self.pyboy.memory
            lines.append("RAM: " + ", ".join(f"{a:04X}={memory[a]}" for a in self.ram_addresses) + ".")
        if self.reward_terms:
            lines.append("Tracked values: " + ", ".join(
                f"{t.name}={v}" for t, v in zip(self.reward_terms, self._prev_terms)) + ".")
        return "\n".join(lines)

    def screen_png_base64(self) -> str:
        """The current screen (144x160 RGB) as a base64 PNG, for vision LLMs."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.pyboy.screen.ndarray[:, :, :3]).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
