"""`python -m pipeline.replay run_id=<id> episode=<n>`: play back a recorded evaluation episode.

Downloads the run's replays/ artifacts (written by pipeline.callbacks.replay), rebuilds the
env from replays/env.yaml, resets it with the episode's seed and steps the recorded actions
(no agent). Every reward and the final info["game"] must equal the logged ones bit for bit:

    replay of episode <n> matches: <k> steps, return <r>               (exit 0)
    replay diverges at step <k>: reward <got> != <logged>               (exit 1; k is 0-based)
    replay diverges at step <k>: action <a> is illegal (<why>)          (exit 1)
    error: <what is wrong with the input>                               (exit 2)

It also writes an illustrated step log: replays/episode_<n>_steps.md for Balatro (the hand
before each action, the action, the hand type and chips x mult of each play) or
replays/episode_<n>.gif for Game Boy, and logs it to the run under replays/.

Arguments (key=value): run_id, episode (default 0), tracking_uri (default
sqlite:///outputs/mlflow.db), out (folder for the step log; default
outputs/replays/<run_id>), from_dir (replay from a local replays/ folder instead of the
store: env.yaml and episode_<n>.npz; nothing is logged unless run_id is also given).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cli import EXIT_USAGE, UsageError

ARGS = {"run_id": None, "episode": "0", "tracking_uri": "sqlite:///outputs/mlflow.db",
        "out": None, "from_dir": None}
ARTIFACT_DIR = "replays"


def parse_args(argv: list[str]) -> dict[str, Any]:
    args = dict(ARGS)
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in ARGS:
            raise UsageError(f"{item}: expected key=value with key one of: {', '.join(ARGS)}")
        args[key] = value
    try:
        args["episode"] = int(args["episode"])
    except ValueError:
        raise UsageError(f"episode={args['episode']}: not an integer") from None
    if args["run_id"] is None and args["from_dir"] is None:
        raise UsageError("run_id: required (or from_dir=<local replays folder>)")
    return args


def fetch(args: dict[str, Any], dst: Path) -> tuple[Path, Any]:
    """The local replays folder (downloaded under `dst` for a run id), and the tracker when a
    run id was given (to log the step log)."""
    tracker = None
    if args["run_id"] is not None:
        from pipeline.tracking.mlflow_tracker import MLflowTracker

        uri = args["tracking_uri"]
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise UsageError(f"tracking_uri: there is no MLflow store at "
                             f"{uri.removeprefix('sqlite:///')}")
        tracker = MLflowTracker(uri=uri)
        try:
            tracker.client.get_run(args["run_id"])
        except Exception as ex:  # noqa: BLE001 - unknown id or unreachable store
            raise UsageError(f"run_id={args['run_id']}: not a run in {uri} "
                             f"({str(ex).splitlines()[0] if str(ex) else type(ex).__name__})") from ex
    if args["from_dir"] is not None:
        folder = Path(args["from_dir"])
        if not folder.is_dir():
            raise UsageError(f"from_dir={folder}: not a folder")
        return folder, tracker
    try:
        local = tracker.client.download_artifacts(args["run_id"], ARTIFACT_DIR, str(dst))
    except Exception as ex:  # noqa: BLE001
        raise UsageError(f"run {args['run_id']} has no {ARTIFACT_DIR}/ artifacts "
                         "(was it run with the replay callback and an evaluation?)") from ex
    return Path(local), tracker


def build_env(env_yaml: Path) -> Any:
    """The env from the run's resolved env config, built as the run built it."""
    from omegaconf import OmegaConf

    import pipeline.envs  # noqa: F401 - registers the envs
    from pipeline.run import instantiate_component

    try:
        return instantiate_component(OmegaConf.load(env_yaml), "env")
    except Exception as ex:
        cause = ex.__cause__ or ex
        raise UsageError(f"cannot rebuild the env from {env_yaml.name}: "
                         f"{str(cause).splitlines()[0] if str(cause) else type(cause).__name__}"
                         ) from ex


class StepLog:
    """Markdown for text envs with last_hand (Balatro), a GIF for screen envs (Game Boy)."""

    def __init__(self, env: Any, episode: int, out: Path) -> None:
        from pipeline.envs.gameboy import GameBoyEnv

        self.env, self.out = env, out
        self.gif = isinstance(env.unwrapped, GameBoyEnv)
        self.path = out / (f"episode_{episode}.gif" if self.gif else f"episode_{episode}_steps.md")
        self.frames: list[np.ndarray] = []
        self.lines: list[str] = [f"# Replay of episode {episode}", ""]
        self._view = ""

    def start(self, seed: int) -> None:
        if self.gif:
            self._frame()
        else:
            self.lines += [f"Seed {seed}.", ""]

    def before(self) -> None:
        if not self.gif and hasattr(self.env, "text_view"):
            self._view = self.env.text_view()

    def after(self, k: int, action: int, reward: float, info: dict[str, Any]) -> None:
        if self.gif:
            self._frame()
            return
        text = self.env.action_to_text(action) if hasattr(self.env, "action_to_text") else str(action)
        self.lines += [f"## Step {k}", "", "```", self._view, "```", "",
                       f"**Action {action}:** {text} -> reward {reward!r}", ""]
        hand = info.get("last_hand")
        if hand:
            self.lines += [f"**{hand['type']}:** {hand['chips']} chips x {hand['mult']} mult = "
                           f"{hand['score']}", ""]

    def note(self, line: str) -> None:
        self.lines += [f"**{line}**", ""]

    def _frame(self) -> None:
        frame = self.env.render()
        if isinstance(frame, np.ndarray) and frame.ndim == 3:
            self.frames.append(np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8))

    def write(self) -> Path | None:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.gif:
            if not self.frames:
                return None
            from PIL import Image

            images = [Image.fromarray(f) for f in self.frames]
            images[0].save(self.path, save_all=True, append_images=images[1:], duration=67, loop=0)
        else:
            self.path.write_text("\n".join(self.lines))
        return self.path


def replay(env: Any, record: dict[str, Any], log: StepLog, episode: int) -> tuple[bool, str]:
    """Step the recorded actions; (matches, the line to print)."""
    from pipeline.envs.text import IllegalActionError

    actions, rewards = record["actions"], record["rewards"]
    _, info = env.reset(seed=record["seed"])
    log.start(record["seed"])
    total, done = 0.0, False
    for k, action in enumerate(int(a) for a in actions):
        if done:
            return False, (f"replay diverges at step {k}: the episode ended after {k} steps, "
                           f"the log has {len(actions)}")
        log.before()
        try:
            _, reward, terminated, truncated, info = env.step(action)
        except IllegalActionError as ex:
            log.note(f"step {k}: action {action} is illegal")
            return False, f"replay diverges at step {k}: action {action} is illegal ({ex})"
        reward = float(reward)
        log.after(k, action, reward, info)
        if reward != float(rewards[k]):
            log.note(f"step {k}: reward {reward!r} != logged {float(rewards[k])!r}")
            return False, f"replay diverges at step {k}: reward {reward!r} != {float(rewards[k])!r}"
        total += reward
        done = terminated or truncated
    last = len(actions) - 1
    if not done:
        return False, f"replay diverges at step {last}: the episode did not end there"
    game = {k: float(v) for k, v in info.get("game", {}).items()}
    for key in sorted(set(game) | set(record["game"])):
        got, logged = game.get(key), record["game"].get(key)
        if got != logged:
            return False, f"replay diverges at step {last}: final {key} {got!r} != {logged!r}"
    if float(game.get("score", total)) != record["score"]:
        return False, (f"replay diverges at step {last}: final score "
                       f"{float(game.get('score', total))!r} != {record['score']!r}")
    return True, f"replay of episode {episode} matches: {len(actions)} steps, return {total!r}"


def main(argv: list[str]) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:   # the downloaded replays
        return _replay_episode(args, *fetch(args, Path(tmp)))


def _replay_episode(args: dict[str, Any], folder: Path, tracker: Any) -> int:
    from pipeline.callbacks.replay import load_episode

    n = args["episode"]
    npz, env_yaml = folder / f"episode_{n}.npz", folder / "env.yaml"
    if not npz.is_file():
        have = sorted(int(p.stem.split("_")[1]) for p in folder.glob("episode_*.npz"))
        span = f"episodes {have[0]}..{have[-1]}" if have else "no episodes"
        raise UsageError(f"episode={n}: not in the replays ({span})")
    if not env_yaml.is_file():
        raise UsageError(f"{folder}: has no env.yaml")
    record = load_episode(npz)
    env = build_env(env_yaml)
    out = Path(args["out"] or Path("outputs/replays") / (args["run_id"] or "local"))
    log = StepLog(env, n, out)
    try:
        ok, line = replay(env, record, log, n)
    finally:
        path = log.write()
        env.close()
    if tracker is not None and path is not None:
        tracker.client.log_artifact(args["run_id"], str(path), ARTIFACT_DIR)
    print(line)
    if path is not None:
        print(f"step log: {path}")
    return 0 if ok else 1


def cli() -> None:
    try:
        sys.exit(main(sys.argv[1:]))
    except UsageError as ex:
        sys.stderr.write(f"error: {ex}\n")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    cli()
