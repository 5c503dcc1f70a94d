"""GameBoyEnv's frames per second against raw PyBoy ticking, side by side (goal: ratio >= 0.90).

    python -m benchmarks.gameboy_fps [--rounds 12] [--chunk 250] [--rom path/to/game.gb]

Both sides run the same ROM (the generated test ROM unless --rom is given) with the same
settings and the same button sequence (each default button in turn, then the no-op):
headless, sound off, the button held for press_frames frames with rendering off, then the
rest of frames_per_action with only the last frame rendered, exactly the frames the env
renders. The raw side does no observation, reward or info work, so the ratio is the env's
overhead. The two alternate in chunks of --chunk steps for --rounds rounds and each side
keeps its fastest chunk (and the median is shown), so a busy shared machine penalises
neither side more than the other.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

BUTTONS = ["down", "left", "right", "up", "a", "b", "start"]  # GameBoyEnv's default buttons


class RawLoop:
    """PyBoy driven directly: what GameBoyEnv.step does minus the env's own work."""

    def __init__(self, rom: str, press_frames: int, frames_per_action: int) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using SDL2 binaries")
            from pyboy import PyBoy

        self.pyboy = PyBoy(rom, window="null", sound_emulated=False, log_level="ERROR")
        self.pyboy.set_emulation_speed(0)
        self.pyboy.tick(120, render=False, sound=False)  # past the boot ROM, as the env starts
        self.press, self.rest = press_frames, frames_per_action - press_frames
        self.sequence = [*BUTTONS, None]  # None: the no-op
        self.i = 0

    def run(self, steps: int) -> None:
        pyboy, sequence = self.pyboy, self.sequence
        for _ in range(steps):
            button = sequence[self.i % len(sequence)]
            self.i += 1
            if button:
                pyboy.button_press(button)
            pyboy.tick(self.press, render=False, sound=False)
            if button:
                pyboy.button_release(button)
            pyboy.tick(self.rest, render=True, sound=False)


class EnvLoop:
    def __init__(self, rom: str, press_frames: int, frames_per_action: int) -> None:
        from pipeline.envs.gameboy import GameBoyEnv

        self.env = GameBoyEnv(rom, buttons=BUTTONS, noop=True, press_frames=press_frames,
                              frames_per_action=frames_per_action, max_steps=10**9)
        self.env.reset(seed=0)
        self.n_actions = int(self.env.action_space.n)  # the buttons, then the no-op
        self.i = 0

    def run(self, steps: int) -> None:
        env = self.env
        for _ in range(steps):
            env.step(self.i % self.n_actions)
            self.i += 1


def timed(loop, steps: int) -> float:
    start = time.perf_counter()
    loop.run(steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="alternating measurements per side")
    parser.add_argument("--chunk", type=int, default=250, help="env steps per measurement")
    parser.add_argument("--press-frames", type=int, default=8)
    parser.add_argument("--frames-per-action", type=int, default=24)
    parser.add_argument("--rom", help="a Game Boy ROM; default: the generated test ROM")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rom = args.rom
        if rom is None:
            from tests.roms import build_rom

            rom = str(build_rom(Path(tmp) / "bench.gb"))
        raw = RawLoop(rom, args.press_frames, args.frames_per_action)
        env = EnvLoop(rom, args.press_frames, args.frames_per_action)
        raw.run(args.chunk)  # warm-up
        env.run(args.chunk)
        frames = args.chunk * args.frames_per_action
        raw_fps, env_fps = [], []
        for _ in range(args.rounds):
            raw_fps.append(frames / timed(raw, args.chunk))
            env_fps.append(frames / timed(env, args.chunk))
        raw.pyboy.stop(save=False)
        env.env.close()

    best_env, best_raw = max(env_fps), max(raw_fps)
    median_ratio = statistics.median(e / r for e, r in zip(env_fps, raw_fps))
    print(f"{args.rounds} rounds of {args.chunk} steps x {args.frames_per_action} frames ({frames} frames) per side")
    print(f"env  (GameBoyEnv.step): {best_env:9.0f} frames/s  ({best_env / args.frames_per_action:.0f} steps/s)")
    print(f"raw  (PyBoy.tick):      {best_raw:9.0f} frames/s")
    print(f"ratio env/raw:          {best_env / best_raw:9.3f}  (goal >= 0.90; "
          f"median of the per-round ratios {median_ratio:.3f})")


if __name__ == "__main__":
    main()
