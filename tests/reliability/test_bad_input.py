"""Bad input is refused before anything runs: one line naming the field, exit code 2,
and nothing half-written (no MLflow store, no run folder).

Each case runs the `python -m pipeline <overrides>` entry point (in this process, and a
few through a real subprocess).
Input errors of the other entry points have their own tests: pyfunc inputs
(tests/models/), API request bodies (tests/serve/), illegal env actions
(tests/envs/balatro/).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from pathlib import Path

import pytest

from tests import roms
from tests.conftest import run_pipeline


def _files(tmp: Path) -> dict[str, str]:
    """Input files for the cases: a real generated ROM, a corrupt one, a bad save state."""
    rom = roms.build_rom(tmp / "homebrew.gb")
    (tmp / "corrupt.gb").write_bytes(b"\x00" * 1000)
    (tmp / "garbage.state").write_bytes(b"not a save state")
    (tmp / "corrupt.pt").write_bytes(b"\x80\x04 torn checkpoint")
    return {"rom": str(rom), "corrupt": str(tmp / "corrupt.gb"),
            "state": str(tmp / "garbage.state"), "ckpt": str(tmp / "corrupt.pt")}


CASES = [
    # (overrides, the start of the one-line message)
    (["env=nope"], "env=nope: no such option in conf/env/ (expected one of: balatro"),
    (["agent=nope"], "agent=nope: no such option in conf/agent/ (expected one of: dqn"),
    (["tracking=nope"], "tracking=nope: no such option in conf/tracking/"),
    (["run.nope=1"], "run.nope: unknown key (expected one of: total_steps"),
    (["agent.batch_sizes=3"], "agent.batch_sizes: unknown key"),
    (["env.colour=red"], "env.colour: unknown key"),
    (["run.total_steps=lots"], "run.total_steps: Value 'lots' of type 'str' is not a valid Integer"),
    (["agent.lr=fast"], "agent.lr: Value 'fast' of type 'str' is not a valid Float"),
    (["run.total_steps=-10"], "run.total_steps: -10 is not allowed (expected a number >= 0)"),
    (["agent.gamma=1.5"], "agent.gamma: 1.5 is not allowed (expected a number in [0, 1])"),
    (["env.max_steps=0"], "env.max_steps: 0 is not allowed (expected a number > 0)"),
    (["env.stake=pink"], "env.stake: 'pink' is not a stake (expected one of: white"),
    (["env.mode=marathon"], "env.mode: 'marathon' is not a mode"),
    (["callbacks.metrics.nope=1"], "callbacks.metrics.nope: unknown key"),
    (["env=gameboy"], "env.rom_path: required but not set"),
    (["env=gameboy", "env.rom_path=/nonexistent/red.gb"], "env.rom_path: /nonexistent/red.gb does not exist"),
    (["env=gameboy", "env.rom_path={corrupt}"], "env.rom_path: {corrupt}"),
    (["env=pokemon_red", "env.rom_path={rom}"], "env.rom_path: {rom}"),
    (["env=gameboy", "env.rom_path={rom}", "env.save_state={state}"], "env.save_state: {state}"),
    (["run.resume=0123456789abcdef"], "run.resume: 0123456789abcdef"),
    (["run.resume=/nonexistent/latest.pt"], "run.resume: /nonexistent/latest.pt does not exist"),
    (["run.resume={ckpt}"], "run.resume: {ckpt} is not a readable checkpoint"),
    (["tracking=mlflow_server", "tracking.uri=http://127.0.0.1:9"], "tracking.uri: cannot reach"),
]


def _run_in_process(args: list[str], cwd: Path, monkeypatch) -> tuple[int, str]:
    """`python -m pipeline <args>` in this process (no interpreter start-up: ~0.3 s a case)."""
    import pipeline.__main__ as entry
    from pipeline.cli import guarded

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["pipeline", *args])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    err = io.StringIO()
    code = 0
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with contextlib.redirect_stderr(err):
        try:
            guarded(entry._main)
        except SystemExit as ex:
            code = ex.code
        finally:
            # Hydra configured logging for the run (a file in a run folder that is removed
            # when the run is refused): give the test session its own logging back.
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
    os.environ.pop("HYDRA_FULL_ERROR", None)
    return code, err.getvalue()


def _check(code: int, stderr: str, expected: str, cwd: Path) -> None:
    assert code == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr[-2000:]
    assert "Traceback" not in stderr
    assert errors[0].startswith(f"error: {expected}"), errors[0]
    # Nothing half-written: no store, no artifacts, no run folder.
    assert not (cwd / "mlflow.db").exists()
    assert not (cwd / "outputs" / "mlflow.db").exists()
    assert not (cwd / "outputs" / "mlartifacts").exists()
    assert not (cwd / "outputs").exists(), sorted(map(str, cwd.glob("outputs/**")))


@pytest.mark.reliability
@pytest.mark.parametrize("overrides,expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, overrides, expected):
    files = _files(tmp_path)
    args = [o.format(**files) for o in overrides]
    code, stderr = _run_in_process(args, tmp_path, monkeypatch)
    _check(code, stderr, expected.format(**files), tmp_path)


@pytest.mark.reliability
@pytest.mark.slow
@pytest.mark.parametrize("case", [0, 6, 8, 19], ids=["unknown option", "wrong type",
                                                   "negative budget", "bad resume id"])
def test_the_real_command_line(tmp_path, case):
    """The same through a real `python -m pipeline` process: exit status and stderr."""
    overrides, expected = CASES[case]
    result = run_pipeline(*overrides, cwd=tmp_path, timeout=120)
    _check(result.returncode, result.stderr, expected, tmp_path)
