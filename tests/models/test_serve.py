"""Both pyfunc models behind `mlflow models serve --env-manager local`, called over REST.

The two servers start side by side (each is a fresh process that loads its model with
mlflow.pyfunc.load_model from the registry), so the test pays one start-up, not two.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.envs.balatro import BalatroEnv
from tests.conftest import REPO
from tests.models.conftest import POLICY, SESSION


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, payload: dict, timeout: float = 30) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                 data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read() or b"{}")


def _wait_for_ping(proc: subprocess.Popen, port: int, log: Path, deadline: float) -> None:
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"server on {port} did not answer /ping:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(trained_run, tmp_path_factory):
    """{model name: port} for the policy and the game-session servers."""
    logs = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_run["uri"],
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_DISABLE_TELEMETRY": "true",
           "PYTHONPATH": str(REPO)}
    procs, ports = {}, {}
    for name in (POLICY, SESSION):
        ports[name] = _free_port()
        log = logs / f"{name}.log"
        procs[name] = (subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@test",
             "--env-manager", "local", "-p", str(ports[name]), "-h", "127.0.0.1"],
            env=env, cwd=logs, stdout=log.open("w"), stderr=subprocess.STDOUT), log)
    try:
        deadline = time.time() + 120
        for name, (proc, log) in procs.items():
            _wait_for_ping(proc, ports[name], log, deadline)
        yield ports
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
@pytest.mark.server
def test_served_policy_answers(servers):
    env = BalatroEnv(mode="blind")
    obs, info = env.reset(seed=0)
    status, body = _post(servers[POLICY], {"dataframe_records": [
        {"obs": obs.tolist(), "action_mask": info["action_mask"].tolist()}]})
    assert status == 200, body
    [masked] = body["predictions"]
    assert info["action_mask"][masked["action"]]
    assert len(masked["q_values"]) == env.action_space.n

    status, body = _post(servers[POLICY], {"dataframe_split": {
        "columns": ["obs"], "data": [[obs.tolist()], [obs.tolist()]]}})
    assert status == 200, body  # no masks: the best of all actions
    unmasked = body["predictions"]
    assert len(unmasked) == 2
    assert unmasked[0]["q_values"] == pytest.approx(masked["q_values"], abs=1e-5)
    q = unmasked[0]["q_values"]
    assert unmasked[0]["action"] == max(range(len(q)), key=q.__getitem__)

    status, body = _post(servers[POLICY], {"dataframe_records": [{"observation": [1, 2]}]})
    assert status == 400 and "obs" in body.get("message", "")  # MLflow's own schema check


@pytest.mark.slow
@pytest.mark.server
def test_served_game_session_plays_and_reports_errors(servers):
    port = servers[SESSION]
    status, body = _post(port, {"dataframe_records": [
        {"action": "start_game", "headless": True, "session_id": "rest"}]})
    assert status == 200, body
    [started] = body["predictions"]
    assert started["status"] == "success" and started["screen_base64"], started

    # The state lives in the server: a later request steps the same game.
    status, body = _post(port, {"dataframe_records": [
        {"action": "step", "headless": True, "session_id": "rest", "steps": 2}]})
    [stepped] = body["predictions"]
    assert stepped["status"] == "success" and stepped["ai_response"]
    assert isinstance(stepped["action_executed"], int)

    status, body = _post(port, {"dataframe_records": [{"action": "fly"},
                                                      {"action": "step", "session_id": "x"}]})
    assert status == 200  # errors come back as payloads, not HTTP errors
    assert [a["status"] for a in body["predictions"]] == ["error", "error"]
    assert all(a["error"] for a in body["predictions"])
