"""Play a game through MLflow: the game-session contract, for any env and agent (models from code).

Artifacts: `config` (a run's resolved config.yaml: which env, which agent) and, for agents
with a network, `weights` (its state dict). Each request is one row:

    {"action": "start_game" | "step", "headless": bool,      # required / optional
     "session_id": str, "steps": int, "seed": int}           # optional

`start_game` builds a fresh env and agent for the session (default id "default") and
resets the game (with `seed` when given); `step` lets the agent take `steps` moves
(default 1, at most 1000; it stops early when the game ends). Each answer is

    {"status": "success" | "error", "screen_base64": PNG of env.render(),
     "action_executed": the last action index, "success": bool,
     "ai_response": what the agent did, in words, "error": message or None,
     "session_id": the session}

Bad input is answered with `status: "error"`, never an exception. Sessions are isolated
(each has its own env and agent) and live in this process: serve with one worker (the
default of `mlflow models serve`). `headless=false` asks envs that have a window
(Game Boy) to open one; it needs a display.
"""
from __future__ import annotations

import base64
import io
import numbers
import threading
from collections import OrderedDict
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

ACTIONS = ("start_game", "step")
MAX_STEPS_PER_CALL = 1000
MAX_SESSIONS = 32  # the least recently used session is closed beyond this
DEFAULT_SESSION = "default"


class _Session:
    def __init__(self, env: Any, agent: Any) -> None:
        self.env, self.agent = env, agent
        self.obs: Any = None
        self.info: dict[str, Any] = {}
        self.done = False
        self.episode_return = 0.0
        self.steps = 0
        self.lock = threading.Lock()

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:  # noqa: BLE001 - closing must never fail a request
            pass


class GameSessionModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from pipeline.models.common import load_config

        self.cfg = load_config(context.artifacts["config"])
        self.weights = context.artifacts.get("weights")
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.lock = threading.Lock()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None
                ) -> list[dict[str, Any]]:
        """One answer per request row, in order (a batch may start a game and step it)."""
        try:
            rows = _rows(model_input)
        except Exception as ex:  # noqa: BLE001 - bad input is answered, never raised
            return [_error(f"input: {ex}")]
        return [self.handle(row) for row in rows]

    # ---- one request
    def handle(self, request: Any) -> dict[str, Any]:
        session_id = None
        try:
            if not isinstance(request, dict):
                raise _BadInput(f"expected an object with 'action', got {type(request).__name__}")
            request = {k: v for k, v in request.items() if not _missing(v)}
            action = request.get("action")
            if action not in ACTIONS:
                raise _BadInput(f"action: {action!r} is not an action (expected one of: "
                                f"{', '.join(ACTIONS)})")
            session_id = _session_id(request.get("session_id"))
            headless = _flag(request.get("headless", True), "headless")
            if action == "start_game":
                seed = _integer(request.get("seed"), "seed", 0, 2**63 - 1)
                return self.start(session_id, headless, seed)
            steps = _integer(request.get("steps", 1), "steps", 1, MAX_STEPS_PER_CALL)
            return self.step(session_id, steps)
        except _BadInput as ex:
            return _error(str(ex), session_id)
        except Exception as ex:  # noqa: BLE001 - the env or agent failed: say so, keep serving
            return _error(f"{type(ex).__name__}: {ex}", session_id)

    def start(self, session_id: str, headless: bool, seed: int | None) -> dict[str, Any]:
        from pipeline.models.common import build_agent, build_env

        overrides: dict[str, Any] = {"render_mode": "rgb_array",
                                     "window": "null" if headless else "SDL2"}
        env = build_env(self.cfg, **overrides)
        session = _Session(env, None)
        try:
            session.agent = build_agent(self.cfg, env, self.weights)
            session.obs, session.info = env.reset(seed=seed)
        except Exception:
            session.close()  # an emulator must not outlive a failed start
            raise
        with self.lock:
            old = self.sessions.pop(session_id, None)
            self.sessions[session_id] = session
            evicted = []
            while len(self.sessions) > MAX_SESSIONS:
                evicted.append(self.sessions.popitem(last=False)[1])
        for s in ([old] if old else []) + evicted:
            s.close()
        return _answer(session, session_id, None,
                       f"started a new game of {self.cfg.env.get('name', 'the env')} "
                       f"with the {self.cfg.agent.get('name', '')} agent")

    def step(self, session_id: str, steps: int) -> dict[str, Any]:
        with self.lock:
            session = self.sessions.get(session_id)
            if session is not None:
                self.sessions.move_to_end(session_id)
        if session is None:
            raise _BadInput(f"session_id: no game {session_id!r} (send action=start_game first)")
        with session.lock:
            if session.done:
                raise _BadInput(f"session {session_id!r}: the game is over (return "
                                f"{session.episode_return:.3f}); send action=start_game to play again")
            env = session.env.unwrapped
            said, action = [], None
            for _ in range(steps):
                action = int(session.agent.act(session.obs, session.info, explore=False))
                said.append(env.action_to_text(action) if hasattr(env, "action_to_text")
                            else f"action {action}")
                session.obs, reward, terminated, truncated, session.info = session.env.step(action)
                session.episode_return += float(reward)
                session.steps += 1
                if terminated or truncated:
                    session.done = True
                    said.append(f"game over after {session.steps} steps "
                                f"(return {session.episode_return:.3f})")
                    break
            return _answer(session, session_id, action, "; ".join(said))


# ---------------------------------------------------------------- helpers
class _BadInput(ValueError):
    pass


def _rows(model_input: Any) -> list[Any]:
    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        return [model_input]
    if isinstance(model_input, list):
        return model_input
    raise _BadInput(f"expected a request object or a list of them, got {type(model_input).__name__}")


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays are values, not missing
        return False


def _session_id(value: Any) -> str:
    if value is None:
        return DEFAULT_SESSION
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise _BadInput(f"session_id: {value!r} is not a session id (expected a non-empty string)")
    return str(value)


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise _BadInput(f"{field}: {value!r} is not a boolean (expected true or false)")


def _integer(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not float(value).is_integer():
        raise _BadInput(f"{field}: {value!r} is not an integer (expected {low}..{high})")
    if not low <= int(value) <= high:
        raise _BadInput(f"{field}: {value!r} is out of range (expected an integer {low}..{high})")
    return int(value)


def _screen(env: Any) -> str | None:
    frame = env.render()
    if frame is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.asarray(frame, dtype=np.uint8)[..., :3])).save(
        buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _answer(session: _Session, session_id: str, action: int | None, text: str) -> dict[str, Any]:
    return {"status": "success", "screen_base64": _screen(session.env), "action_executed": action,
            "success": True, "ai_response": text, "error": None, "session_id": session_id}


def _error(message: str, session_id: str | None = None) -> dict[str, Any]:
    return {"status": "error", "screen_base64": None, "action_executed": None, "success": False,
            "ai_response": None, "error": message, "session_id": session_id}


mlflow.models.set_model(GameSessionModel())
