"""PokemonRedEnv's RAM map and rewards, on the generated test ROM (check_rom_hash=false).

The test ROM moves D362/D361 on the d-pad, sets badge bits at D356 on A, adds 1 to the
first party mon's HP on B and sets an event flag at D748 on START (see tests/roms.py).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pipeline.envs  # noqa: F401  (registers the envs)
from pipeline.envs.pokemon_red import (
    POKEMON_RED_SHA1,
    PokemonRedEnv,
    read_state,
)
from pipeline.envs.text import TextGame
from tests import roms

DOWN, LEFT, RIGHT, UP, A, B, START = range(7)


@pytest.fixture(scope="module")
def rom(tmp_path_factory) -> Path:
    return roms.build_rom(tmp_path_factory.mktemp("rom") / "homebrew.gb")


@pytest.fixture
def env(rom):
    env = PokemonRedEnv(str(rom), check_rom_hash=False)
    yield env
    env.close()


def give_party(env: PokemonRedEnv, hp: int, max_hp: int, level: int = 5) -> None:
    """One mon in the party, written straight into WRAM (the ROM only ever changes the HP low byte)."""
    memory = env.pyboy.memory
    memory[0xD163] = 1
    memory[0xD16C], memory[0xD16D] = hp >> 8, hp & 0xFF
    memory[0xD18D], memory[0xD18E] = max_hp >> 8, max_hp & 0xFF
    memory[0xD18C] = level


def test_passes_check_env(rom):
    env = gym.make("pipeline/PokemonRed-v0", rom_path=str(rom), check_rom_hash=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert [str(w.message) for w in caught if "WARN:" in str(w.message)] == []


def test_wrong_rom_hash_is_a_clear_error(rom):
    with pytest.raises(ValueError) as err:
        PokemonRedEnv(str(rom))
    message = str(err.value)
    assert message.startswith(f"env.rom_path: {rom} is not Pokemon Red (title 'PIPELINE TEST', sha1 {roms.sha1(rom)}")
    assert POKEMON_RED_SHA1 in message and "env.check_rom_hash=false" in message and "\n" not in message


def test_moving_changes_position_and_rewards_exploration(env):
    obs, info = env.reset(seed=0)
    assert (info["x"], info["y"], info["xy"], info["map_id"]) == (0, 0, (0, 0), 0)
    assert info["game"]["unique_coords"] == 1.0
    _, r_right, _, _, info = env.step(RIGHT)
    assert (info["x"], info["y"]) == (1, 0) and r_right == pytest.approx(0.1)
    _, r_down, _, _, info = env.step(DOWN)
    assert (info["x"], info["y"]) == (1, 1) and r_down == pytest.approx(0.1)
    _, r_up, _, _, info = env.step(UP)  # back to (1, 0): seen already
    assert info["xy"] == (1, 0) and r_up == 0.0
    assert info["game"]["unique_coords"] == 3.0 and info["game"]["x"] == 1.0


def test_badge_bit_gives_badge_reward_and_metric(env):
    _, info = env.reset(seed=0)
    assert info["game"]["badges"] == 0.0
    _, reward, _, _, info = env.step(A)  # the ROM sets bit 0 of D356
    assert reward == pytest.approx(10.0) and info["game"]["badges"] == 1.0 and info["badges"] == 1
    _, reward, _, _, info = env.step(A)
    assert reward == pytest.approx(10.0) and info["game"]["badges"] == 2.0
    assert {"badges", "events", "unique_coords", "max_level", "map_id"} <= info["game"].keys()
    assert all(isinstance(v, float) for v in info["game"].values())


def test_event_flag_reward(env):
    env.reset(seed=0)
    _, reward, _, _, info = env.step(START)  # one more flag at D748
    assert reward == pytest.approx(4.0) and info["game"]["events"] == 1.0
    env.pyboy.memory[0xD754] = 0x01  # the museum ticket flag earns nothing
    _, reward, _, _, info = env.step(B)
    assert reward == 0.0 and info["game"]["events"] == 1.0


def test_healing_reward(env):
    env.reset(seed=0)
    give_party(env, hp=10, max_hp=20, level=7)
    env.step(LEFT)  # the env sees the party (a new party member is not healing)
    _, reward, _, _, info = env.step(B)  # the ROM adds 1 HP: 10 -> 11 of 20
    assert reward == pytest.approx(10.0 * 1 / 20)
    assert info["game"]["hp_fraction"] == pytest.approx(11 / 20) and info["game"]["max_level"] == 7.0
    assert info["party_levels"] == [7] and info["party_hp"] == [11]


def test_stuck_penalty_and_custom_weights(rom):
    env = PokemonRedEnv(str(rom), check_rom_hash=False,
                        weights={"explore": 1.0, "stuck": -0.5, "stuck_visits": 3, "badge": 0.0})
    env.reset(seed=0)  # visit 1 of (0, 0, 0)
    rewards = [env.step(B)[1] for _ in range(3)]  # B does not move: visits 2, 3, 4
    assert rewards == [0.0, -0.5, -0.5]
    assert env.step(RIGHT)[1] == pytest.approx(1.0)
    env.close()
    with pytest.raises(ValueError, match=r"^env\.weights\.speed: unknown weight"):
        PokemonRedEnv(str(rom), check_rom_hash=False, weights={"speed": 1.0})


def test_observation_holds_the_ram_map(env):
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict) and space["screen"].shape == (3, 72, 80)
    assert space["ram"].dtype == np.float32 and space["ram"].shape == (PokemonRedEnv.N_FEATURES,)
    env.reset(seed=0)
    obs, *_ = env.step(RIGHT)
    assert obs in space
    assert obs["ram"][0] == pytest.approx(1 / 255)  # x
    obs, *_ = env.step(A)
    assert obs["ram"][5 + 2 * 6] == 1.0  # first badge bit


def test_screen_only_observation(rom):
    env = PokemonRedEnv(str(rom), check_rom_hash=False, ram_obs=False)
    obs, info = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 72, 80), np.uint8)
    assert obs.shape == (3, 72, 80) and info["xy"] == (0, 0)
    env.close()


def test_read_state_decodes_the_ram_map():
    memory = np.zeros(0x10000, dtype=np.uint8)
    memory[0xD362], memory[0xD361], memory[0xD35E], memory[0xD057] = 7, 9, 12, 2
    memory[0xD163] = 2
    memory[0xD16C:0xD16E] = [0x01, 0x02]  # 258 HP, big-endian
    memory[0xD18D:0xD18F] = [0x01, 0x2C]  # 300 max HP
    memory[0xD18C], memory[0xD18C + 0x2C] = 12, 30
    memory[0xD16C + 0x2C + 1], memory[0xD18D + 0x2C + 1] = 50, 100
    memory[0xD356] = 0b00000111
    memory[0xD347:0xD34A] = [0x01, 0x23, 0x45]
    memory[0xD2F7], memory[0xD30A], memory[0xD30B] = 0b11, 0xFF, 0x01
    memory[0xD747], memory[0xD754], memory[0xD886] = 0b101, 0b11, 0x80  # D754 bit 0: museum ticket
    s = read_state(memory)
    assert (s.x, s.y, s.map_id, s.in_battle, s.party_size) == (7, 9, 12, 2, 2)
    assert s.hp == [258, 50] and s.max_hp == [300, 100] and s.levels == [12, 30]
    assert s.hp_fraction == pytest.approx(308 / 400)
    assert (s.badges, s.money, s.pokedex_owned, s.pokedex_seen) == (3, 12345, 2, 9)
    assert s.events == 2 + 1 + 1


def test_text_view_summarises_ram(env):
    assert isinstance(env, TextGame)
    env.reset(seed=0)
    give_party(env, hp=20, max_hp=25, level=6)
    memory = env.pyboy.memory
    memory[0xD347], memory[0xD348], memory[0xD349] = 0x00, 0x30, 0x00
    env.step(RIGHT)
    env.step(A)
    view = env.text_view()
    assert "Map 0, position x=1 y=0, not in battle." in view
    assert "Party (1): L6 20/25 HP." in view
    assert "Badges: 1 of 8. Money: 3000." in view
    assert "Last action: press a." in view
    assert env.describe_actions().startswith("Answer with exactly one of: press down | press left")
    assert env.action_space.n == 7  # no no-op for Pokemon Red
    assert len(env.screen_png_base64()) > 100


def test_state_dict_round_trip(rom, env):
    env.reset(seed=0)
    for a in (RIGHT, DOWN, A):
        env.step(a)
    state = env.state_dict()
    expected = [env.step(a) for a in (RIGHT, LEFT, START)]
    other = PokemonRedEnv(str(rom), check_rom_hash=False)
    other.reset(seed=5)
    other.load_state_dict(state)
    got = [other.step(a) for a in (RIGHT, LEFT, START)]
    other.close()
    assert [r for _, r, *_ in got] == [r for _, r, *_ in expected]
    assert [i["game"] for *_, i in got] == [i["game"] for *_, i in expected]
