"""The game-session pyfunc model: the old Pokemon Red contract, for any env and agent."""
from __future__ import annotations

import base64
import io

import mlflow
import mlflow.pytorch
import pytest
from PIL import Image

from pipeline.envs.balatro import BalatroEnv
from pipeline.models.common import GAME_SESSION_FILE, GreedyPolicy, game_session_signature
from tests.models.conftest import SESSION

CONTRACT = {"status", "screen_base64", "action_executed", "success", "ai_response", "error"}


@pytest.fixture(scope="module")
def session_model(trained_run):
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(trained_run["uri"]):
        return mlflow.pyfunc.load_model(f"models:/{SESSION}@test")


def _one(model, request):
    [answer] = model.predict(request)
    assert CONTRACT <= set(answer), answer
    return answer


def _png(screen: str) -> Image.Image:
    data = base64.b64decode(screen)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


@pytest.mark.slow
def test_start_then_step_plays_the_trained_agent(session_model):
    started = _one(session_model, {"action": "start_game", "headless": True, "session_id": "p1"})
    assert started["status"] == "success" and started["success"] is True
    assert started["error"] is None and started["action_executed"] is None
    assert _png(started["screen_base64"]).size[0] > 0

    stepped = _one(session_model, {"action": "step", "headless": True, "session_id": "p1",
                                   "steps": 2})
    assert stepped["status"] == "success" and stepped["success"] is True
    assert isinstance(stepped["action_executed"], int)
    # the env's own words for what the agent did, e.g. "play 1 3 5; discard 2"
    assert stepped["ai_response"].split()[0] in {"play", "discard", "select", "skip", "buy",
                                                 "sell", "reroll", "leave"}
    assert stepped["screen_base64"] != started["screen_base64"]


@pytest.mark.slow
def test_sessions_are_isolated(session_model, tracking_uri):
    for sid in ("a", "b"):
        _one(session_model, {"action": "start_game", "session_id": sid, "seed": 7})
    # Interleaved: a, a, then b, b. The same seed and a greedy agent give b the same moves
    # as a only if a's steps left b's game untouched.
    a = [_one(session_model, {"action": "step", "session_id": "a"})["ai_response"]
         for _ in range(2)]
    b = [_one(session_model, {"action": "step", "session_id": "b"})["ai_response"]
         for _ in range(2)]
    assert a == b
    # ...and they are the trained network's moves (the weights artifact was loaded).
    net = mlflow.pytorch.load_model("models:/balatro_dqn_best_episode/1")
    env = BalatroEnv(mode="blind")
    obs, info = env.reset(seed=7)
    assert a[0] == env.action_to_text(GreedyPolicy(net).act(obs, info))
    _one(session_model, {"action": "start_game", "session_id": "a", "seed": 8})  # restart a
    assert _one(session_model, {"action": "step", "session_id": "b"})["status"] == "success"


@pytest.mark.slow
@pytest.mark.parametrize("request_, field", [
    ({"action": "jump"}, "action"),
    ({"headless": True}, "action"),
    ({"action": 3}, "action"),
    ({"action": "step", "session_id": "nobody"}, "session_id"),
    ({"action": "step", "session_id": "p1", "steps": 0}, "steps"),
    ({"action": "step", "session_id": "p1", "steps": "many"}, "steps"),
    ({"action": "step", "session_id": "p1", "steps": 2.5}, "steps"),
    ({"action": "start_game", "headless": "yes"}, "headless"),
])
def test_bad_input_is_an_error_payload(session_model, request_, field):
    answer = _one(session_model, request_)
    assert answer["status"] == "error" and answer["success"] is False
    assert field in answer["error"], answer["error"]
    assert answer["screen_base64"] is None and answer["action_executed"] is None


@pytest.mark.slow
def test_batch_and_game_over(session_model):
    answers = session_model.predict([{"action": "start_game", "session_id": "g", "seed": 1},
                                     {"action": "nonsense"},
                                     {"action": "step", "session_id": "g", "steps": 1000}])
    assert [a["status"] for a in answers] == ["success", "error", "success"]
    assert "game over" in answers[2]["ai_response"]  # a blind ends well before 1000 moves
    after = _one(session_model, {"action": "step", "session_id": "g"})
    assert after["status"] == "error" and "start_game" in after["error"]


@pytest.mark.slow
def test_any_agent_random_without_a_network(tmp_path, compose_cfg, trained_run):
    """A game session for an agent without a network: the config artifact only."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    from omegaconf import OmegaConf

    from pipeline.models.common import game_session_example
    from pipeline.tracking import MLflowTracker

    config = tmp_path / "config.yaml"
    config.write_text(OmegaConf.to_yaml(compose_cfg("agent=random", "env.mode=blind")))
    tracker = MLflowTracker(uri=trained_run["uri"])
    tracker.start_run("session", experiment="balatro_random")
    info = tracker.log_pyfunc_model("game_session", GAME_SESSION_FILE,
                                    artifacts={"config": str(config)},
                                    signature=game_session_signature(),
                                    input_example=game_session_example())
    tracker.register_model("balatro_random_game_session", info["model_uri"], aliases=["live"])
    tracker.end_run()
    with _use_tracking_uri(trained_run["uri"]):
        model = mlflow.pyfunc.load_model("models:/balatro_random_game_session@live")
    assert _one(model, {"action": "start_game", "headless": True})["status"] == "success"
    stepped = _one(model, {"action": "step", "steps": 3})  # the default session
    assert stepped["status"] == "success" and stepped["ai_response"].count(";") >= 1
