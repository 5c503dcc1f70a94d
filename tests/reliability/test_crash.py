"""Crash safety: SIGKILL a training run at 10 random points; every resume continues it.

Each kill lands at a random moment (during training, during a checkpoint save, during
a metric flush); each resume must continue the same MLflow run from the last complete
checkpoint, losing at most one checkpoint interval, and the run's metric steps must stay
monotonic with no duplicates.
"""
from __future__ import annotations

import os
import random
import re
import signal
import time

import pytest
from mlflow.tracking import MlflowClient

from pipeline.callbacks.checkpoint import load_checkpoint
from tests.conftest import run_pipeline, start_pipeline

# Each segment runs ~1,000 steps before its kill, so ten segments cover ~10k of the 16k
# steps and the final resume trains the rest; process start-up is most of the test's time.
TOTAL = 16_000
EVERY = 500
ARGS = [f"run.total_steps={TOTAL}", f"run.checkpoint_every={EVERY}", "run.eval_every=0",
        "run.eval_episodes=2", "run.log_every=200", "run.progress=false",
        "agent.learning_starts=500", "agent.hidden_sizes=[64]", "agent.network=mlp",
        # A small replay buffer: it wraps (so its restore is tested wrapped) and keeps each
        # of the ~30 checkpoints small (a full 16k-transition buffer is ~80 MB per save).
        "agent.buffer_size=4000", "tracking.flush_interval_s=0.5"]


def _max_logged_step(client: MlflowClient, run_id: str) -> int:
    return max((m.step for m in client.get_metric_history(run_id, "rollout/ep_return")),
               default=0)


@pytest.mark.reliability
@pytest.mark.slow
def test_ten_random_sigkills_lose_at_most_one_checkpoint_interval(tmp_path, store):
    rng = random.Random(1234)
    client = MlflowClient(store["uri"])
    run_id = None
    kills = 0
    for segment in range(10):
        resume = [f"run.resume={run_id}"] if run_id else []
        proc = start_pipeline(*ARGS, *store["overrides"], *resume,
                              f"hydra.run.dir={tmp_path}/seg{segment}", cwd=tmp_path)
        # Wait until this segment is training (its first metrics or checkpoint), then kill
        # after a random extra delay: anywhere in training, saving or flushing.
        ckpt = tmp_path / f"seg{segment}" / "checkpoints" / "latest.pt"
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and not ckpt.exists():
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if run_id is None:
            [run] = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
            run_id = run.info.run_id
        # The checkpoint on disk is always complete (atomic rename), never a torn file.
        payload = load_checkpoint(ckpt)
        assert payload["run_id"] == run_id
        logged = _max_logged_step(client, run_id)
        # At most one interval lost: checkpoints are saved synchronously every EVERY steps,
        # so the last complete one is at most EVERY behind the kill; what reached the store
        # (flushed every 0.5 s) is at most the kill step.
        assert logged - payload["step"] <= EVERY, (segment, logged, payload["step"])
    assert kills == 10

    final = run_pipeline(*ARGS, *store["overrides"], f"run.resume={run_id}",
                         f"hydra.run.dir={tmp_path}/final", cwd=tmp_path, timeout=400)
    assert final.returncode == 0, final.stderr[-3000:]
    resumed = [int(m) for m in re.findall(r"Resumed run \w+ at step (\d+)", final.stderr)]
    assert resumed, final.stderr[-2000:]

    runs = client.search_runs([client.get_experiment_by_name("balatro").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in ("rollout/ep_return", "train/loss", "time/sps", "game/score"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert steps == sorted(steps), key
        assert len(steps) == len(set(steps)), f"{key}: duplicate steps"
    assert load_checkpoint(tmp_path / "final" / "checkpoints" / "latest.pt")["step"] == TOTAL


@pytest.mark.reliability
def test_a_kill_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    from pipeline.callbacks.checkpoint import save_checkpoint

    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"format": 1, "step": 1, "run_id": "r"})
    # A save that dies midway leaves only the temp file: the latest checkpoint is intact.
    (tmp_path / "latest.pt.tmp").write_bytes(b"\x80\x02torn")
    assert load_checkpoint(path)["step"] == 1
    save_checkpoint(path, {"format": 1, "step": 2, "run_id": "r"})
    assert load_checkpoint(path)["step"] == 2
    assert not (tmp_path / "latest.pt.tmp").exists()


@pytest.mark.reliability
def test_checkpoints_never_run_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": 1, "x": Evil()}))
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
