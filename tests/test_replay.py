"""Bit-exact replays: a smoke run's evaluation episodes play back with `python -m pipeline.replay`."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.envs.balatro import actions as A
from tests import roms
from tests.conftest import run_pipeline


def only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    return client, run.info.run_id


def replay(*args: str, cwd: Path):
    # Its own temp dir: the replays it downloads must not be left there.
    tmpdir = cwd / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    result = run_pipeline(*args, cwd=cwd, module="pipeline.replay", timeout=120,
                          env={"TMPDIR": str(tmpdir)})
    assert not list(tmpdir.glob("replay-*"))
    return result


@pytest.fixture(scope="module")
def balatro_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("balatro")
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = run_pipeline("debug=smoke", "agent=random", f"tracking.uri={uri}",
                          f"tracking.artifact_dir={tmp}/mlartifacts", "run.progress=false", cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run_id = only_run(uri, "balatro")
    return tmp, uri, client, run_id


@pytest.mark.slow
def test_balatro_episode_replays_exactly_and_logs_a_step_log(balatro_run):
    tmp, uri, client, run_id = balatro_run
    listed = {Path(a.path).name for a in client.list_artifacts(run_id, "replays")}
    assert {"env.yaml", "episode_0.npz", "episode_1.npz"} <= listed

    result = replay(f"run_id={run_id}", "episode=0", f"tracking_uri={uri}", cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("replay of episode 0 matches: "), result.stdout
    with np.load(client.download_artifacts(run_id, "replays/episode_0.npz", str(tmp / "dl"))) as d:
        n, ret = len(d["actions"]), float(d["rewards"].sum())
        assert d["actions"].dtype == np.int16 and d["rewards"].dtype == np.float64
        assert int(d["seed"]) == 10000  # run.eval_seed
    assert f"matches: {n} steps, return {ret!r}" in result.stdout

    listed = {Path(a.path).name for a in client.list_artifacts(run_id, "replays")}
    assert "episode_0_steps.md" in listed
    text = Path(client.download_artifacts(run_id, "replays/episode_0_steps.md",
                                          str(tmp / "dl2"))).read_text()
    assert "## Step 0" in text and "Hand: 1:" in text and "chips x" in text and "mult =" in text


@pytest.mark.slow
def test_bad_run_id_and_missing_episode_are_one_line_errors(balatro_run):
    tmp, uri, _, run_id = balatro_run
    for args in ([f"run_id=0123abc", f"tracking_uri={uri}"],
                 [f"run_id={run_id}", "episode=99", f"tracking_uri={uri}"],
                 ["episode=0"]):
        result = replay(*args, cwd=tmp)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.slow
def test_a_tampered_action_is_reported_at_its_step(balatro_run):
    tmp, uri, client, run_id = balatro_run
    folder = Path(client.download_artifacts(run_id, "replays", str(tmp / "tampered")))
    path = folder / "episode_0.npz"
    with np.load(path) as d:
        data = {key: d[key] for key in d.files}
    # The first play (reward > 0) becomes a discard of the same cards: reward 0, or illegal
    # when no discard is left; either way the replay must stop at exactly that step.
    k = int(np.flatnonzero(data["rewards"] > 0)[0])
    assert data["actions"][k] < A.DISCARD
    data["actions"] = data["actions"].copy()
    data["actions"][k] += A.DISCARD
    np.savez(path, **data)

    result = replay(f"from_dir={folder}", "episode=0", f"out={tmp / 'tampered_out'}", cwd=tmp)
    assert result.returncode == 1, result.stderr[-3000:]
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"replay diverges at step {k}: "), line
    assert ("reward 0.0 != " in line) or (f"action {data['actions'][k]} is illegal (" in line), line
    assert (tmp / "tampered_out" / "episode_0_steps.md").is_file()


@pytest.mark.slow
def test_game_boy_episode_replays_exactly_and_writes_a_gif(tmp_path, store):
    rom = roms.build_rom(tmp_path / "test.gb")
    reward = '[{address:"0xC0A0",kind:delta,scale:1.0,name:score}]'
    result = run_pipeline("env=gameboy", f"env.rom_path={rom}", "debug=smoke", "env.max_steps=50",
                          "agent=random", "run.total_steps=200", f"env.reward={reward}",
                          "run.progress=false", *store["overrides"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run_id = only_run(store["uri"], "gameboy")

    result = replay(f"run_id={run_id}", "episode=1", f"tracking_uri={store['uri']}",
                    f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("replay of episode 1 matches: 50 steps, return "), result.stdout
    from PIL import Image

    with Image.open(tmp_path / "out" / "episode_1.gif") as gif:
        assert gif.n_frames > 1 and gif.size == (160, 144)
    assert "episode_1.gif" in {Path(a.path).name for a in client.list_artifacts(run_id, "replays")}
