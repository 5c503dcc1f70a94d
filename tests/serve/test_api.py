"""The agent API through an HTTP client against a running uvicorn: every endpoint, online
learning into an MLflow run, schema errors, policies from checkpoints and `models:/` URIs,
and `python -m pipeline.serve` itself."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from pipeline.config import ConfigError
from pipeline.envs.balatro import BalatroEnv
from pipeline.envs.balatro_live import GameStateEncoder
from pipeline.serve.api import create_app
from tests.balatrobot_fake import FakeBalatroBot
from tests.conftest import CONF, REPO
from tests.serve import free_port, serving

pytestmark = pytest.mark.server
SMALL_DQN = ["agent=dqn", "agent.buffer_size=2000", "agent.learning_starts=16",
             "agent.batch_size=8", "agent.train_freq=1", "agent.hidden_sizes=[32]",
             "agent.eps_decay_steps=50", "run.progress=false"]
ENDPOINTS = {"/act", "/metrics", "/mlflow/start_run", "/mlflow/end_run", "/mlflow/ui_info",
             "/health"}


def serve_cfg(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("serve", overrides=list(overrides))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    return {"uri": f"sqlite:///{tmp}/mlflow.db", "overrides": [
        f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_dir={tmp}/mlartifacts",
        "tracking.flush_interval_s=0.2"]}


@pytest.fixture(scope="module")
def api(store):
    ui_port = free_port()
    cfg = serve_cfg("env=balatro", *SMALL_DQN, *store["overrides"], "serve.learn=true",
                    f"serve.ui_port={ui_port}")
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        client.ui_port = ui_port
        yield client


def test_health_docs_and_openapi_schema(api):
    assert api.get("/health").json() == {"status": "ok", "env": "balatro", "agent": "dqn",
                                         "policy": None, "learn": True}
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = api.get("/openapi.json").json()
    assert ENDPOINTS <= set(schema["paths"])
    act = schema["components"]["schemas"]["ActRequest"]["properties"]
    assert {"observation", "state", "action_mask", "reward", "done"} == set(act)
    assert {"action", "action_text", "q_values", "rpc"} == set(
        schema["components"]["schemas"]["ActResponse"]["properties"])


def test_act_on_an_observation_a_simulator_state_and_a_balatrobot_gamestate(api):
    env = BalatroEnv(mode="blind")
    obs, info = env.reset(seed=1)
    by_obs = api.post("/act", json={"observation": obs.tolist(),
                                    "action_mask": info["action_mask"].tolist()}).json()
    assert info["action_mask"][by_obs["action"]]
    assert by_obs["action_text"] == env.action_to_text(by_obs["action"])
    assert len(by_obs["q_values"]) == 447 and by_obs["rpc"] is None
    by_state = api.post("/act", json={"state": env.state_dict()}).json()
    assert by_state == by_obs  # the same state, the same greedy decision

    fake = FakeBalatroBot()
    fake.rpc_start({"deck": "RED", "stake": "WHITE", "seed": "SERVE1"})
    gamestate = fake.rpc_select({})
    answer = api.post("/act", json={"state": gamestate}).json()
    encoder = GameStateEncoder()
    _, game_info = encoder.encode(gamestate)
    assert game_info["action_mask"][answer["action"]]
    rpc = answer["rpc"]
    assert (rpc["method"], rpc["params"]) == encoder.call_for(answer["action"])
    getattr(fake, f"rpc_{rpc['method']}")(rpc["params"])  # the game accepts the call

    cash_out = api.post("/act", json={"state": {**gamestate, "state": "ROUND_EVAL"}}).json()
    assert cash_out == {"action": None, "action_text": "cash_out (automatic)", "q_values": None,
                        "rpc": {"method": "cash_out", "params": {}}}
    menu = api.post("/act", json={"state": {"state": "MENU"}}).json()
    assert menu["rpc"] == {"method": "start", "params": {"deck": "RED", "stake": "WHITE"}}
    episodes = api.get("/metrics").json()["episodes"]
    over = api.post("/act", json={"state": {**gamestate, "state": "ROUND_EVAL"}, "reward": 2.5,
                                  "done": True}).json()  # a blind-mode episode ends here
    assert over["action"] is None and over["rpc"] is None
    assert api.get("/metrics").json()["episodes"] == episodes + 1


OBS = [0.0] * 556


@pytest.mark.parametrize("body,field,message", [
    ({}, "observation", "exactly one of"),
    ({"observation": OBS, "state": {"state": "SHOP"}}, "state", "exactly one of"),
    ({"observation": [0.0, 1.0]}, "observation", "expected 556 numbers"),
    ({"observation": "abc"}, "observation", "valid list"),
    ({"obs": [1.0]}, "obs", "Extra inputs are not permitted"),
    ({"observation": OBS, "action_mask": [True]}, "action_mask", "expected 447 booleans"),
    ({"observation": OBS, "action_mask": [False] * 447}, "action_mask", "no action is legal"),
    ({"observation": OBS, "reward": "lots"}, "reward", "valid number"),
    ({"observation": OBS, "done": "maybe"}, "done", "valid boolean"),
    ({"state": {"foo": 1}}, "state", "expected a balatrobot GameState"),
    ({"state": {"state": "SPLASH"}}, "state", "'SPLASH' has no observation"),
    ({"state": {"state": "SHOP", "blinds": "x"}}, "state", "not in the shape balatrobot"),
])
def test_bad_requests_get_422_naming_the_field(api, body, field, message):
    response = api.post("/act", json=body)
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if e["loc"][:2] == ["body", field]]
    assert message in error["msg"]


def test_bad_json_and_bad_query_get_422(api):
    assert api.post("/act", content=b"{not json", headers={"Content-Type": "application/json"}
                    ).status_code == 422
    response = api.post("/mlflow/start_run", params={"run_name": "x" * 300})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query",
                                                                                  "run_name"]


def test_online_learning_metrics_and_the_mlflow_run(api, store):
    assert api.post("/mlflow/end_run").status_code == 409
    run = api.post("/mlflow/start_run", params={"run_name": "served-dqn"}).json()
    assert run["status"] == "RUNNING" and run["run_name"] == "served-dqn"
    assert api.post("/mlflow/start_run").status_code == 409
    ui = api.get("/mlflow/ui_info").json()
    assert ui["tracking_uri"].startswith("sqlite:////") and ui["ui_running"] is False
    assert ui["ui_url"] == f"http://127.0.0.1:{api.ui_port}"
    assert ui["command"] == (f"python -m pipeline.ui --store {ui['tracking_uri']} "
                             f"--port {api.ui_port}")
    assert ui["run_url"].endswith(f"/runs/{run['run_id']}")

    before = api.get("/metrics").json()
    env = BalatroEnv(mode="blind")
    returns = []
    for episode in range(40):
        obs, info = env.reset(seed=100 + episode)
        reward, total = None, 0.0
        while True:
            answer = api.post("/act", json={"observation": obs.tolist(), "reward": reward,
                                            "action_mask": info["action_mask"].tolist()}).json()
            obs, reward, terminated, truncated, info = env.step(answer["action"])
            total += reward
            if terminated or truncated:
                last = api.post("/act", json={"observation": obs.tolist(), "reward": reward,
                                              "done": True}).json()
                assert last["action"] is None
                break
        returns.append(total)
        metrics = api.get("/metrics").json()
        if metrics["updates"] > 5 and len(returns) >= 2:
            break
    assert metrics["episodes"] - before["episodes"] == len(returns)
    assert metrics["last_return"] == pytest.approx(returns[-1])
    assert metrics["best_return"] >= max(returns) - 1e-6 and metrics["episode_return"] == 0.0
    assert metrics["buffer_size"] > 16 and metrics["loss"] is not None
    assert metrics["epsilon"] < 1.0 and metrics["learning"] is True
    assert metrics["run_id"] == run["run_id"] and metrics["steps"] > before["steps"]

    ended = api.post("/mlflow/end_run").json()
    assert ended["status"] == "FINISHED" and ended["run_id"] == run["run_id"]
    assert api.get("/metrics").json()["run_id"] is None
    stored = MlflowClient(store["uri"]).get_run(run["run_id"])
    assert stored.info.status == "FINISHED" and stored.info.run_name == "served-dqn"
    assert {"rollout/ep_return", "train/loss", "train/epsilon"} <= set(stored.data.metrics)
    assert stored.data.params["serve.learn"] == "True" and stored.data.tags["served"] == "true"


def test_tracking_none_and_an_agent_that_needs_the_state():
    cfg = serve_cfg("env=balatro", "agent=heuristic", "tracking=none")
    env = BalatroEnv(mode="blind")
    obs, info = env.reset(seed=2)
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url) as client:
        response = client.post("/act", json={"observation": obs.tolist()})
        assert response.status_code == 422
        assert "send `state`" in response.json()["detail"][0]["msg"]
        action = client.post("/act", json={"state": env.state_dict()}).json()["action"]
        assert info["action_mask"][action]
        for path in ("/mlflow/start_run", "/mlflow/end_run"):
            response = client.post(path)
            assert response.status_code == 409 and "tracking=none" in response.json()["detail"]
        assert client.get("/mlflow/ui_info").json()["tracking_uri"] is None
        metrics = client.get("/metrics").json()
        assert metrics["steps"] == 1 and metrics["epsilon"] is None and metrics["loss"] is None


def test_policy_from_a_checkpoint_and_from_a_models_uri(tmp_path, store):
    import mlflow
    import mlflow.pytorch
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from pipeline.agents.dqn import DQNAgent
    from pipeline.callbacks.checkpoint import FORMAT_VERSION, save_checkpoint

    env = BalatroEnv(mode="blind")
    obs, _ = env.reset(seed=3)
    trained = DQNAgent(env.observation_space, env.action_space, env=env, seed=123,
                       hidden_sizes=[32], buffer_size=100)   # env: the Balatro network, as served
    expected = trained.q_values(obs[None])[0]
    path = save_checkpoint(tmp_path / "latest.pt", {"format": FORMAT_VERSION, "step": 7,
                                                    "agent": trained.state_dict()})
    base = ("env=balatro", *SMALL_DQN, *store["overrides"])
    service = create_app(serve_cfg(*base, f"serve.policy={path}")).state.service
    np.testing.assert_allclose(service.agent.q_values(obs[None])[0], expected, rtol=1e-6)

    client = MlflowClient(store["uri"])
    experiment = client.create_experiment("models", artifact_location=(tmp_path / "a").as_uri())
    run_id = client.create_run(experiment).info.run_id  # a run id: its checkpoints/latest.pt
    client.log_artifact(run_id, str(path), "checkpoints")
    service = create_app(serve_cfg(*base, f"serve.policy={run_id}")).state.service
    np.testing.assert_allclose(service.agent.q_values(obs[None])[0], expected, rtol=1e-6)
    with _use_tracking_uri(store["uri"]), mlflow.start_run(experiment_id=experiment):
        mlflow.pytorch.log_model(trained.online, name="policy", serialization_format="pickle",
                                 pip_requirements=["torch==2.13.0"],
                                 registered_model_name="served_policy")
    cfg = serve_cfg(*base, "serve.policy=models:/served_policy/1")
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url) as http:
        assert http.get("/health").json()["policy"] == "models:/served_policy/1"
        answer = http.post("/act", json={"observation": obs.tolist()}).json()
        np.testing.assert_allclose(answer["q_values"], expected, rtol=1e-5)

    for policy, message in [
        (tmp_path / "missing.pt", r"^serve\.policy: .*missing\.pt does not exist"),
        ("models:/no_such_model/1", r"^serve\.policy: cannot load models:/no_such_model/1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            create_app(serve_cfg(*base, f"serve.policy={policy}"))
    with pytest.raises(ConfigError, match=r"^serve\.policy: .*does not fit this agent"):
        create_app(serve_cfg(*base, "agent.hidden_sizes=[16]",
                             "serve.policy=models:/served_policy/1"))


def test_serve_config_is_typed_and_extends_the_training_config():
    from omegaconf import OmegaConf

    from pipeline.cli import one_line_error

    cfg = serve_cfg("debug=smoke", "serve.port=9001")
    assert OmegaConf.get_type(cfg.serve).__name__ == "ServeConfig"
    assert (cfg.serve.host, cfg.serve.port, cfg.serve.policy) == ("127.0.0.1", 9001, None)
    assert cfg.run.total_steps == 1200 and cfg.env.name == "balatro"  # debug=smoke still applies
    for override, line in [
        ("serve.prot=1", "serve.prot: unknown key (expected one of: host, port, policy, learn, "
                         "explore, ui_port)"),
        ("serve.port=high", "serve.port: Value 'high' of type 'str' is not a valid Integer"),
    ]:
        with pytest.raises(Exception) as err:
            serve_cfg(override)
        assert one_line_error(err.value) == line


def _serve(*args: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "-m", "pipeline.serve", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_python_m_pipeline_serve_starts_answers_and_stops(tmp_path):
    port = free_port()
    proc = _serve("agent=random", "tracking=none", f"serve.port={port}", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API did not come up"
                time.sleep(0.3)
        assert health.json()["agent"] == "random"
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert f"Agent API for agent=random on env=balatro: http://127.0.0.1:{port}" in out
    assert f"Uvicorn running on http://127.0.0.1:{port}" in err

    with socket_on(port):  # the port is taken: one line, exit 2, nothing started
        taken = _serve("tracking=none", f"serve.port={port}", cwd=tmp_path)
        _, err = taken.communicate(timeout=60)
    assert taken.returncode == 2
    assert err.strip() == (f"error: serve.port: port {port} is taken "
                           f"(pick another with serve.port={port + 1})")


class socket_on:
    """Hold a listening socket on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()

    def __enter__(self) -> "socket_on":
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
