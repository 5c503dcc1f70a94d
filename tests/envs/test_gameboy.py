"""GameBoyEnv on a ROM generated in Python (tests/roms.py): real emulation, no shipped ROM."""
from __future__ import annotations

import base64
import io
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import pipeline.envs  # noqa: F401  (registers the envs)
from pipeline.envs.gameboy import (
    GameBoyEnv,
    GameBoyEnvConfig,
    decode_number,
    make_downscaler,
    parse_address,
)
from pipeline.envs.text import IllegalActionError, TextGame
from tests import roms

REPO = Path(__file__).resolve().parents[2]
RIGHT, DOWN, A = 2, 0, 4  # indices in the default button list: down, left, right, up, a, b, start


@pytest.fixture(scope="module")
def rom(tmp_path_factory) -> Path:
    return roms.build_rom(tmp_path_factory.mktemp("rom") / "test.gb")


@pytest.fixture
def env(rom):
    env = GameBoyEnv(str(rom), ram_features=["0xD362", roms.PLAYER_Y],
                     reward=[{"address": "0xC0A0", "kind": "delta", "scale": 0.5, "name": "score"}])
    yield env
    env.close()


def play(env: GameBoyEnv, actions, seed=0):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, reward, _, _, _ = env.step(a)
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


# ----------------------------------------------------------------------------- gymnasium contract


@pytest.mark.parametrize("kwargs", [{}, {"ram_features": ["0xD362"], "noop_max": 2}])
def test_passes_check_env(rom, kwargs):
    env = gym.make("pipeline/GameBoy-v0", rom_path=str(rom), **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    env.close()
    assert [str(w.message) for w in caught if "WARN:" in str(w.message)] == []  # gymnasium's logger.warn


def test_default_observation_is_stacked_downscaled_screens(rom):
    env = GameBoyEnv(str(rom))
    obs, info = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 72, 80), np.uint8)
    assert obs.shape == (3, 72, 80) and obs.dtype == np.uint8
    assert env.action_space.n == 8  # 7 buttons + no-op
    assert info["action_mask"].dtype == np.bool_ and info["action_mask"].all()
    assert info["game"] == {"frames": 0.0, "steps": 0.0}
    for _ in range(3):
        obs, _, _, _, info = env.step(RIGHT)
    assert info["game"]["frames"] == 3 * 24.0
    # The ROM scrolls the picture with the player: the stacked frames differ, newest last.
    assert not np.array_equal(obs[1], obs[2]) and not np.array_equal(obs[0], obs[1])
    frame = env.render()
    assert frame.shape == (144, 160, 3) and frame.dtype == np.uint8
    assert np.array_equal(obs[-1], frame[:, :, 0].reshape(72, 2, 80, 2).mean(axis=(1, 3)).astype(np.uint8))
    env.close()


def test_dict_observation_with_ram_features(env):
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert env.observation_space["ram"] == gym.spaces.Box(0, 255, (2,), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs["ram"].tolist() == [0, 0] and obs["screen"].shape == (3, 72, 80)
    for a in (RIGHT, RIGHT, DOWN):
        obs, *_ = env.step(a)
    assert obs["ram"].tolist() == [2, 1]  # x at D362, y at D361
    assert obs in env.observation_space


def test_truncates_at_max_steps(rom):
    env = GameBoyEnv(str(rom), max_steps=3)
    env.reset(seed=0)
    flags = [env.step(7)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    env.close()


def test_close_stops_pyboy_and_is_idempotent(rom):
    env = GameBoyEnv(str(rom))
    pyboy = env.pyboy
    env.close()
    env.close()
    assert env.pyboy is None
    with pytest.raises(Exception, match="stopped"):
        pyboy.tick()


def test_import_does_not_import_pyboy():
    code = ("import sys, pipeline.envs.gameboy, pipeline.envs.pokemon_red, pipeline.callbacks.media; "
            "bad = [m for m in ('pyboy', 'PIL') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ----------------------------------------------------------------------------- config errors


@pytest.mark.parametrize("case, expected", [
    ("missing", r"^env\.rom_path: .*nope\.gb does not exist \(set env\.rom_path to your Game Boy ROM\)$"),
    ("unset", r"^env\.rom_path: not set "),
    ("directory", r"^env\.rom_path: .* is not a file "),
    ("small", r"^env\.rom_path: .*small\.gb is 512 bytes, not a Game Boy ROM \(expected at least 32768 bytes"),
    ("checksum", r"^env\.rom_path: .*bad\.gb is not a Game Boy ROM \(header checksum at 0x14D is 0x"),
])
def test_invalid_rom_is_a_one_line_error(tmp_path, case, expected):
    paths = {
        "missing": tmp_path / "nope.gb",
        "unset": "???",
        "directory": tmp_path,
        "small": tmp_path / "small.gb",
        "checksum": tmp_path / "bad.gb",
    }
    (tmp_path / "small.gb").write_bytes(bytes(512))
    bad = bytearray(roms.rom_bytes())
    bad[0x14D] ^= 0xFF
    (tmp_path / "bad.gb").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=expected) as err:
        GameBoyEnv(str(paths[case]))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, expected", [
    ({"buttons": ["a", "jump"]}, r"^env\.buttons\[1\]: 'jump' is not a button"),
    ({"buttons": []}, r"^env\.buttons: \[\] is empty"),
    ({"press_frames": 24}, r"^env\.press_frames: 24 must be at least 1 and less than env\.frames_per_action"),
    ({"ram_features": ["D362"]}, r"^env\.ram_features\[0\]: 'D362' is not an address"),
    ({"ram_features": [0x10000]}, r"^env\.ram_features\[0\]: 65536 is outside"),
    ({"reward": [{"address": "0xC0A0", "kind": "sum"}]}, r"^env\.reward\[0\]\.kind: 'sum' is not one of value, delta"),
    ({"reward": [{"address": "0xC0A0", "size": 5}]}, r"^env\.reward\[0\]\.size: 5 is not 1-4 bytes"),
    ({"reward": [{"address": "0xC0A0", "weight": 1}]}, r"^env\.reward\[0\]: unknown key 'weight'"),
    ({"screen_height": 200}, r"^env\.screen_height/screen_width: 200x80 is outside"),
])
def test_invalid_settings_are_one_line_errors(rom, kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        GameBoyEnv(str(rom), **kwargs)


def test_save_state_errors_name_the_field(rom, tmp_path):
    with pytest.raises(ValueError, match=r"^env\.save_state: .*none\.state does not exist \(set env\.save_state"):
        GameBoyEnv(str(rom), save_state=str(tmp_path / "none.state"))
    garbage = tmp_path / "garbage.state"
    garbage.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"^env\.save_state: .*garbage\.state could not be loaded by PyBoy") as err:
        GameBoyEnv(str(rom), save_state=str(garbage))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, schema", [("gameboy", "GameBoyEnvConfig"), ("pokemon_red", "PokemonRedEnvConfig")])
def test_yaml_matches_its_schema(name, schema):
    import pipeline.envs.pokemon_red as pokemon_red
    import pipeline.envs.gameboy as gameboy

    cls = getattr(gameboy, schema, None) or getattr(pokemon_red, schema)
    text = (REPO / "conf" / "env" / f"{name}.yaml").read_text()
    assert text.startswith("# ") and f"  - _{name}_schema\n  - _self_\n" in text
    yaml = OmegaConf.create(text)
    defaults = yaml.pop("defaults")
    assert list(defaults) == [f"_{name}_schema", "_self_"]
    merged = OmegaConf.merge(OmegaConf.structured(cls), yaml)  # raises on unknown keys or wrong types
    assert set(yaml.keys()) == set(cls.__dataclass_fields__)  # every parameter is documented in the yaml
    assert OmegaConf.is_missing(merged, "rom_path")
    lines = text.splitlines()
    body = lines[lines.index("_target_: " + cls._target_) + 1:]
    for previous, line in zip(body, body[1:]):
        if line and not line.lstrip().startswith("#"):  # a key: commented on its line or just above
            assert "  # " in line or previous.startswith("#"), f"{name}.yaml: key without a comment: {line}"


def test_structured_config_instantiates(rom):
    from hydra.utils import instantiate

    cfg = OmegaConf.merge(OmegaConf.structured(GameBoyEnvConfig), {
        "rom_path": str(rom), "ram_features": [0xD362, "0xD361"],
        "reward": [{"address": 0xC0A0, "kind": "increase"}]})
    env = instantiate({k: v for k, v in cfg.items() if k != "name"})  # the run loop drops the name label
    try:
        assert isinstance(env, GameBoyEnv) and env.ram_addresses == [0xD362, 0xD361]
        assert env.reward_terms[0].address == 0xC0A0 and env.reward_terms[0].kind == "increase"
    finally:
        env.close()


# ----------------------------------------------------------------------------- rewards from RAM


def test_ram_expression_rewards(rom):
    env = GameBoyEnv(str(rom), reward=[
        {"address": "0xC0A0", "kind": "delta", "scale": 0.5, "name": "score"},
        {"address": "0xD356", "kind": "increase", "decode": "bits", "scale": 2.0, "name": "badges"},
        {"address": hex(roms.FRAME_COUNTER), "kind": "value", "size": 2, "endian": "little", "scale": 0.0},
    ])
    env.reset(seed=0)
    _, r_move, *_ = env.step(RIGHT)
    assert r_move == 0.0
    _, r_a, _, _, info = env.step(A)  # +10 score (x0.5) and one badge bit (x2)
    assert r_a == pytest.approx(10 * 0.5 + 2.0)
    assert info["game"]["score"] == 10.0 and info["game"]["badges"] == 1.0
    memory = env.pyboy.memory
    assert info["game"][f"ram_{roms.FRAME_COUNTER:04x}"] == memory[roms.FRAME_COUNTER] + 256 * memory[roms.FRAME_COUNTER + 1]
    env.close()


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(["little", "big"]))
@settings(max_examples=50, deadline=None)
def test_decode_uint_matches_int_from_bytes(value, size, endian):
    value %= 256**size
    raw = list(value.to_bytes(size, endian))
    assert decode_number(raw, "uint", endian) == value


def test_decode_bcd_and_bits():
    assert decode_number([0x01, 0x23, 0x45], "bcd", "big") == 12345  # Pokemon Red money
    assert decode_number([0x45, 0x23, 0x01], "bcd", "little") == 12345
    assert decode_number([0b1011, 0xFF], "bits") == 11
    assert parse_address("0xd362", "x") == parse_address(0xD362, "x") == parse_address("54114", "x") == 0xD362


def test_downscaler_block_mean_and_nearest():
    grey = np.random.default_rng(0).integers(0, 256, (144, 160), dtype=np.uint8)
    out = np.empty((36, 40), np.uint8)
    make_downscaler(36, 40)(grey, out)
    assert np.array_equal(out, grey.reshape(36, 4, 40, 4).astype(np.uint32).sum(axis=(1, 3)) // 16)
    odd = np.empty((50, 70), np.uint8)
    make_downscaler(50, 70)(grey, odd)
    assert odd[0, 0] == grey[0, 0] and odd[-1, -1] == grey[(49 * 144) // 50, (69 * 160) // 70]


# ----------------------------------------------------------------------------- determinism, save states, resume


def test_same_seed_same_actions_same_trajectory(rom):
    actions = np.random.default_rng(1).integers(0, 8, size=12).tolist()
    runs = []
    for _ in range(2):
        env = GameBoyEnv(str(rom), noop_max=4, ram_features=["0xC0A2"],
                         reward=[{"address": "0xC0A0", "kind": "delta"}])
        runs.append(play(env, actions, seed=7))
        runs.append(play(env, actions, seed=7))  # and again after a reset of the same env
        env.close()
    first_obs, first_rewards = runs[0]
    for obs, rewards in runs[1:]:
        assert rewards == first_rewards
        assert all(same(a, b) for a, b in zip(obs, first_obs))
    # the seed drives the random no-op start (the frame counter is in the observation)
    env = GameBoyEnv(str(rom), noop_max=20, ram_features=["0xC0A2"])
    starts = {int(env.reset(seed=s)[0]["ram"][0]) for s in range(6)}
    env.close()
    assert len(starts) > 1


def test_episodes_start_from_the_save_state(rom, tmp_path):
    env = GameBoyEnv(str(rom))
    env.reset(seed=0)
    for a in (RIGHT, RIGHT, RIGHT, DOWN):
        env.step(a)
    state_file = tmp_path / "start.state"
    with open(state_file, "wb") as f:
        env.pyboy.save_state(f)
    env.close()

    env = GameBoyEnv(str(rom), save_state=str(state_file), ram_features=["0xD362", "0xD361"])
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        assert obs["ram"].tolist() == [3, 1]
        env.step(RIGHT)
    env.close()


def _is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or type(value) in (int, float, str, bytes, bool)


def test_state_dict_round_trip_resumes_mid_episode(rom, env):
    env.reset(seed=3)
    for a in (RIGHT, A, DOWN):
        env.step(a)
    state = env.state_dict()
    assert _is_plain(state) and isinstance(state["pyboy_state"], bytes)
    tail = (A, RIGHT, 7, A)
    expected = [env.step(a) for a in tail]

    fresh = GameBoyEnv(str(rom), ram_features=["0xD362", roms.PLAYER_Y],
                       reward=[{"address": "0xC0A0", "kind": "delta", "scale": 0.5, "name": "score"}])
    fresh.reset(seed=99)
    fresh.load_state_dict(state)
    got = [fresh.step(a) for a in tail]
    fresh.close()
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(expected, got):
        assert same(o1, o2) and r1 == r2 and (te1, tr1) == (te2, tr2) and i1["game"] == i2["game"]


# ----------------------------------------------------------------------------- text and images for LLM agents


def test_text_interface(env):
    assert isinstance(env, TextGame)
    env.reset(seed=0)
    for a in range(env.action_space.n):
        assert env.parse_action(env.action_to_text(a)) == a
    assert env.action_to_text(RIGHT) == "press right" and env.action_to_text(7) == "wait"
    assert env.parse_action("Press UP.") == 3
    assert env.parse_action("I will press start now") == 6
    assert env.parse_action("noop") == 7
    assert "press down | press left" in env.describe_actions()
    with pytest.raises(IllegalActionError, match="answer with exactly one of: press down"):
        env.parse_action("jump over the wall")
    with pytest.raises(IllegalActionError):
        env.parse_action("press up or press down")
    with pytest.raises(IllegalActionError):
        env.step(8)
    env.step(RIGHT)
    env.step(A)
    view = env.text_view()
    assert "PIPELINE TEST: step 2 of 2048, frame 48." in view
    assert "D362=1" in view and "score=10" in view and "Last action: press a." in view


def test_screen_png_base64(env):
    from PIL import Image

    env.reset(seed=0)
    env.step(RIGHT)
    image = Image.open(io.BytesIO(base64.b64decode(env.screen_png_base64())))
    assert image.format == "PNG" and image.size == (160, 144)
    assert np.array_equal(np.asarray(image.convert("RGB")), env.render())


def test_combined_buttons(rom):
    env = GameBoyEnv(str(rom), buttons=["right+down", "a"], noop=False, ram_features=["0xD362", "0xD361"])
    env.reset(seed=0)
    obs, *_ = env.step(0)
    assert env.action_space.n == 2 and obs["ram"].tolist() == [1, 1]
    assert env.action_to_text(0) == "press right+down" and env.parse_action("press right+down") == 0
    env.close()
