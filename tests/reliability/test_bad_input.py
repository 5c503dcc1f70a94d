"""Bad overrides stop before anything runs: one line naming the key, exit code 2."""
from __future__ import annotations

import pytest

from tests.conftest import run_pipeline


@pytest.mark.slow
@pytest.mark.parametrize("override,expected", [
    ("env=nope", "env=nope: no such option in conf/env/ (expected one of: balatro"),
    ("agent=nope", "agent=nope: no such option in conf/agent/ (expected one of: dqn"),
    ("run.nope=1", "run.nope: unknown key (expected one of: total_steps"),
    ("agent.batch_sizes=3", "agent.batch_sizes: unknown key"),
    ("run.total_steps=lots", "run.total_steps: Value 'lots' of type 'str' is not a valid Integer"),
    ("agent.lr=fast", "agent.lr: Value 'fast' of type 'str' is not a valid Float"),
    ("run.total_steps=-10", "run.total_steps: -10 is not allowed (expected a number > 0)"),
    ("env.stake=pink", "env.stake: 'pink'"),
])
def test_bad_override_is_one_clear_line(tmp_path, override, expected):
    result = run_pipeline(override, "tracking.uri=sqlite:///mlflow.db", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert errors[0].startswith(f"error: {expected}"), errors[0]
    # Nothing half-written: no store, no run directory.
    assert not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.glob("outputs/runs/*/*"))
