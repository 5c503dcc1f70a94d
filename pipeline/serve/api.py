"""The agent API: one agent, built from the Hydra config, behind FastAPI.

`python -m pipeline.serve agent=dqn env=balatro serve.port=8000` composes conf/serve.yaml
(the training config plus `serve:`), builds env, agent and tracker as `pipeline.run.build`
does, loads `serve.policy` (a checkpoint file, an MLflow run id, or a `models:/` / `runs:/`
model URI) and serves:

- POST /act: a state in (`observation`, or a Balatro `state`), an action out; with
  `reward` and `done` the agent learns online (`serve.learn=true`)
- GET /metrics: live counters (steps, episodes, last and best return, epsilon, buffer, loss)
- POST /mlflow/start_run?run_name=: start a run; /act's episodes and updates go to it
- POST /mlflow/end_run: end it
- GET /mlflow/ui_info: where the MLflow UI is, whether it is up, the command that starts it
- GET /health: liveness, and what is served
- GET /docs: the OpenAPI schema, browsable (/openapi.json raw)

Requests are validated by pydantic; a bad one gets 422 with the offending field in
`detail[].loc`. The API binds 127.0.0.1 unless `serve.host` says otherwise: it has no
authentication.
"""
from __future__ import annotations

import logging
import socket
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from omegaconf import DictConfig
from pydantic import BaseModel, ConfigDict, Field

from pipeline.agents.base import Transition
from pipeline.agents.loading import load_policy
from pipeline.config import ConfigError
from pipeline.tracking.redact import redact_text

log = logging.getLogger(__name__)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
BALATRO_ENVS = ("balatro", "balatro_live")


# ---------------------------------------------------------------- request / response shapes
class ActRequest(BaseModel):
    """One decision. Send the state as `observation` (the env's observation vector) or as
    `state` (Balatro envs: a balatrobot GameState as its API returns it, or a simulator
    state from `BalatroEnv.state_dict()`). For online learning also send `reward` (what the
    previous action earned) and `done` (this state ends the episode)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"state": {"state": "SELECTING_HAND", "ante_num": 1, "round_num": 1, "money": 4,
                   "round": {"hands_left": 4, "discards_left": 4, "chips": 0},
                   "blinds": {"small": {"status": "CURRENT", "score": 300}},
                   "hand": {"limit": 8, "cards": [{"key": "H_A"}, {"key": "S_A"}]}},
         "reward": 0.0, "done": False},
        {"observation": [0.0, 0.5, 1.0], "action_mask": [True, False, True]},
    ]})

    observation: list[FiniteFloat] | None = Field(
        None, description="the env's observation, flattened (length = the observation size)")
    state: dict[str, Any] | None = Field(
        None, description="Balatro envs: a balatrobot GameState or a simulator state "
                          "(BalatroEnv.state_dict()); the observation and legal actions are "
                          "computed from it")
    action_mask: list[bool] | None = Field(
        None, description="true for each legal action (length = the number of actions); "
                          "default: from `state`, else every action")
    reward: FiniteFloat | None = Field(
        None, description="the reward the previous action earned (online learning)")
    done: bool = Field(False, description="this state ends the episode: the last transition "
                                          "is terminal and no action is returned")


class RpcCall(BaseModel):
    method: str = Field(description="the balatrobot JSON-RPC method, e.g. play")
    params: dict[str, Any] = Field(default_factory=dict, description="its params, e.g. "
                                                                     "{\"cards\": [0, 2]}")


class ActResponse(BaseModel):
    action: int | None = Field(description="the action index; null when `done` or when the "
                                           "game needs an automatic step (see `rpc`)")
    action_text: str | None = Field(None, description="the action as text, e.g. 'play 1 3 5'")
    q_values: list[float] | None = Field(None, description="the agent's Q-value of every action "
                                                           "(DQN)")
    rpc: RpcCall | None = Field(None, description="for a balatrobot GameState: the call that "
                                                  "performs the action in the real game")


class Metrics(BaseModel):
    steps: int = Field(description="actions answered by /act")
    episodes: int = Field(description="episodes ended (`done`)")
    episode_return: float = Field(description="reward so far in the current episode")
    last_return: float | None = Field(description="return of the last finished episode")
    best_return: float | None = Field(description="best episode return so far")
    epsilon: float | None = Field(description="exploration rate (DQN)")
    buffer_size: int | None = Field(description="transitions in the replay buffer (DQN)")
    loss: float | None = Field(description="last TD loss (DQN, online learning)")
    updates: int | None = Field(description="gradient steps taken (DQN)")
    learning: bool = Field(description="serve.learn: transitions are learned from")
    run_id: str | None = Field(description="the active MLflow run, if any")


class RunInfo(BaseModel):
    run_id: str
    run_name: str
    experiment_id: str | None
    tracking_uri: str
    status: str = Field(description="RUNNING after start_run, FINISHED after end_run")


class UiInfo(BaseModel):
    tracking_uri: str | None = Field(description="the store runs are written to (null: "
                                                 "tracking=none)")
    ui_url: str | None = Field(description="where the MLflow UI is (or will be) served")
    ui_running: bool = Field(description="something answers at ui_url's port")
    command: str | None = Field(description="the command that starts the UI on this store")
    run_url: str | None = Field(description="the active run's page in the UI")


class Health(BaseModel):
    status: str
    env: str
    agent: str
    policy: str | None
    learn: bool


# ---------------------------------------------------------------- the served agent
class Unprocessable(Exception):
    """A request that is well formed but cannot be used: 422 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AgentService:
    """The agent, its counters and the tracking run, behind one lock (uvicorn runs sync
    endpoints in a thread pool)."""

    def __init__(self, cfg: DictConfig) -> None:
        from pipeline.run import build

        self.cfg = cfg
        self.serve = cfg.serve
        parts = build(cfg)
        self.env, self.agent, self.tracker = parts.env, parts.agent, parts.tracker
        parts.eval_env.close()
        self.obs_space = self.env.observation_space
        self.n_actions = int(self.env.action_space.n)
        self.encoder = _encoder(cfg.env) if cfg.env.name in BALATRO_ENVS else None
        if self.serve.policy:
            load_policy(self.agent, str(self.serve.policy), self.tracker, "serve.policy")
        self.learn, self.explore = bool(self.serve.learn), bool(self.serve.explore)
        self.lock = threading.Lock()
        self.run_id: str | None = None
        self.run_name = ""
        self.steps = self.transitions = self.episodes = self.episode_length = 0
        self.episode_return = self.pending_reward = 0.0
        self.last_return: float | None = None
        self.best_return: float | None = None
        self.last_loss: float | None = None
        self.prev: tuple[np.ndarray, int] | None = None

    # ---- /act
    def act(self, req: ActRequest) -> ActResponse:
        with self.lock:
            obs, info, gamestate, automatic = self._decode(req)
            if automatic is not None and not req.done:  # the game's own step (cash out, ...)
                self._reward(req.reward)
                return ActResponse(action=None, action_text=f"{automatic.method} (automatic)",
                                   rpc=automatic)
            if obs is None:  # the episode ends in a state without an observation
                obs = np.zeros(self.obs_space.shape, dtype=self.obs_space.dtype)
            done = req.done or (gamestate is not None and gamestate["state"] == "GAME_OVER")
            mask = info.get("action_mask")
            if not done and mask is not None and not mask.any():
                raise Unprocessable("action_mask", "no action is legal in this state")
            self._reward(req.reward)
            self._learn(obs, mask, done, info)
            if done:
                self._end_episode()
                return ActResponse(action=None)
            try:
                action = int(self.agent.act(obs, info, explore=self.explore))
            except KeyError as ex:
                if req.state is not None:
                    raise
                raise Unprocessable("state", f"agent={self.cfg.agent.name} reads the game state "
                                             f"(info[{ex.args[0]!r}]): send `state`, not only "
                                             "`observation`") from None
            self.steps += 1
            self.episode_length += 1
            self.prev = (obs, action)
            rpc = None
            if gamestate is not None:
                method, params = self.encoder.call_for(action)
                rpc = RpcCall(method=method, params=params)
            return ActResponse(action=action, action_text=self._text(action),
                               q_values=self._q_values(obs), rpc=rpc)

    def _decode(self, req: ActRequest) -> tuple[Any, dict[str, Any], dict | None, RpcCall | None]:
        """(observation, info, the GameState if one was sent, the automatic call if the game
        needs one)."""
        if (req.observation is None) == (req.state is None):
            field = "observation" if req.observation is None else "state"
            raise Unprocessable(field, "send exactly one of `observation` (the env's "
                                       "observation) and `state` (a Balatro game state)")
        gamestate = None
        if req.observation is not None:
            size = int(np.prod(self.obs_space.shape))
            if len(req.observation) != size:
                raise Unprocessable("observation", f"expected {size} numbers (env="
                                                   f"{self.cfg.env.name}), got "
                                                   f"{len(req.observation)}")
            obs = np.asarray(req.observation, dtype=self.obs_space.dtype).reshape(
                self.obs_space.shape)
            info: dict[str, Any] = {}
        else:
            obs, info, gamestate, automatic = self._decode_state(req.state)
            if automatic is not None:
                return None, {}, gamestate, automatic
        if req.action_mask is not None:
            if len(req.action_mask) != self.n_actions:
                raise Unprocessable("action_mask", f"expected {self.n_actions} booleans (one per "
                                                   f"action), got {len(req.action_mask)}")
            info["action_mask"] = np.asarray(req.action_mask, dtype=bool)
        return obs, info, gamestate, None

    def _decode_state(self, state: dict[str, Any]) -> tuple[Any, dict, dict | None, RpcCall | None]:
        from pipeline.envs.balatro_live import BalatroLiveError, automatic_call

        if self.encoder is None:
            raise Unprocessable("state", f"env={self.cfg.env.name} has no state encoder; send "
                                         "`observation` (state works with env=balatro and "
                                         "env=balatro_live)")
        if isinstance(state.get("state"), str):  # a balatrobot GameState
            if state["state"] == "MENU":
                env = self.cfg.env
                return None, {}, state, RpcCall(method="start", params={
                    "deck": str(env.deck).upper(), "stake": str(env.stake).upper()})
            # The API does not own the episode: cash out and go on, whatever env.mode says.
            call = automatic_call(state, mode="run", endless=True)
            if call is not None:
                return None, {}, state, RpcCall(method=call[0], params=call[1])
            try:
                obs, info = self.encoder.encode(state)
            except BalatroLiveError as ex:
                raise Unprocessable("state", str(ex)) from None
            return obs, info, state, None
        try:
            obs, info = self.encoder.encode_simulator(state)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as ex:
            raise Unprocessable("state", "expected a balatrobot GameState (with \"state\": "
                                         "\"SELECTING_HAND\", ...) or a simulator state "
                                         f"(BalatroEnv.state_dict()); {type(ex).__name__}: "
                                         f"{ex}") from None
        return obs, info, None, None

    def _reward(self, reward: float | None) -> None:
        if reward is not None:
            self.pending_reward += reward
            self.episode_return += reward

    def _learn(self, obs: np.ndarray, mask: np.ndarray | None, done: bool,
               info: dict[str, Any]) -> None:
        """The transition from the previous decision to this state, when learning."""
        if not self.learn or self.prev is None:
            return
        prev_obs, prev_action = self.prev
        next_mask = mask if mask is not None else np.ones(self.n_actions, dtype=bool)
        self.agent.observe(Transition(prev_obs, prev_action, self.pending_reward, obs, done,
                                      False, next_mask, info))
        self.pending_reward = 0.0
        self.transitions += 1
        metrics = self.agent.update(self.transitions)
        if metrics:
            self.last_loss = metrics.get("train/loss", self.last_loss)
            if self.run_id is not None:
                self.tracker.log_metrics(metrics, self.steps)

    def _end_episode(self) -> None:
        ret = self.episode_return
        self.episodes += 1
        self.last_return = ret
        self.best_return = ret if self.best_return is None else max(self.best_return, ret)
        if self.run_id is not None:
            self.tracker.log_metrics({"rollout/ep_return": ret,
                                      "rollout/ep_length": float(self.episode_length)},
                                     self.steps)
        self.episode_return = self.pending_reward = 0.0
        self.episode_length = 0
        self.prev = None

    def _text(self, action: int) -> str | None:
        game = self.encoder.sim if self.encoder is not None else self.env.unwrapped
        to_text = getattr(game, "action_to_text", None)
        try:
            return None if to_text is None else str(to_text(action))
        except Exception:  # noqa: BLE001 - a text form is a courtesy, never an error
            return None

    def _q_values(self, obs: np.ndarray) -> list[float] | None:
        q_values = getattr(self.agent, "q_values", None)
        return None if q_values is None else [float(q) for q in q_values(obs[None])[0]]

    # ---- /metrics
    def metrics(self) -> Metrics:
        with self.lock:
            agent = self.agent
            buffer = getattr(agent, "buffer", None)
            return Metrics(steps=self.steps, episodes=self.episodes,
                           episode_return=self.episode_return, last_return=self.last_return,
                           best_return=self.best_return,
                           epsilon=_float(getattr(agent, "epsilon", None)),
                           buffer_size=None if buffer is None else len(buffer),
                           loss=self.last_loss, updates=getattr(agent, "updates", None),
                           learning=self.learn, run_id=self.run_id)

    # ---- /mlflow
    def start_run(self, run_name: str | None) -> RunInfo:
        from pipeline.run import run_params, run_tags

        with self.lock:
            uri = self._tracking_uri()
            if self.run_id is not None:
                raise HTTPException(409, f"run {self.run_id} is active; POST /mlflow/end_run first")
            cfg = self.cfg
            name = run_name or f"{cfg.env.name}__{cfg.agent.name}__serve"
            tags = {**run_tags(cfg), "served": "true", "policy": str(self.serve.policy)}
            try:
                run_id = self.tracker.start_run(name, tags=tags, experiment=cfg.env.name)
                self.tracker.log_params({**run_params(cfg), "serve.policy": self.serve.policy,
                                         "serve.learn": self.learn})
            except Exception as ex:  # noqa: BLE001 - the store's failure, reported as such
                raise HTTPException(503, f"tracking: {ex}".splitlines()[0]) from None
            self.run_id, self.run_name = run_id, name
            return RunInfo(run_id=run_id, run_name=name, tracking_uri=uri, status="RUNNING",
                           experiment_id=getattr(self.tracker, "experiment_id", None))

    def end_run(self) -> RunInfo:
        with self.lock:
            uri = self._tracking_uri()
            if self.run_id is None:
                raise HTTPException(409, "no run is active; POST /mlflow/start_run first")
            self.tracker.end_run("FINISHED")
            info = RunInfo(run_id=self.run_id, run_name=self.run_name, tracking_uri=uri,
                           status="FINISHED",
                           experiment_id=getattr(self.tracker, "experiment_id", None))
            self.run_id = None
            return info

    def _tracking_uri(self) -> str:
        uri = getattr(self.tracker, "uri", None)
        if uri is None:
            raise HTTPException(409, "tracking=none: this server records nothing (restart it "
                                     "with tracking=mlflow or tracking=mlflow_server)")
        return redact_text(uri)

    def ui_info(self) -> UiInfo:
        uri = getattr(self.tracker, "uri", None)
        if uri is None:
            return UiInfo(tracking_uri=None, ui_url=None, ui_running=False, command=None,
                          run_url=None)
        port = int(self.serve.ui_port)
        if uri.startswith(("http://", "https://")):  # a tracking server is its own UI
            ui_url, command = uri.rstrip("/"), None
        else:
            ui_url = f"http://127.0.0.1:{port}"
            command = f"python -m pipeline.ui --store {uri} --port {port}"
        run_url = None
        if self.run_id is not None:
            run_url = f"{ui_url}/#/experiments/{self.tracker.experiment_id}/runs/{self.run_id}"
        return UiInfo(tracking_uri=redact_text(uri), ui_url=redact_text(ui_url),
                      ui_running=_answers(ui_url), command=command and redact_text(command),
                      run_url=run_url and redact_text(run_url))

    def health(self) -> Health:
        return Health(status="ok", env=self.cfg.env.name, agent=self.cfg.agent.name,
                      policy=self.serve.policy, learn=self.learn)

    def close(self) -> None:
        with self.lock:
            if self.run_id is not None:
                self.tracker.end_run("KILLED")
                self.run_id = None
            self.env.close()


def _encoder(env_cfg: DictConfig) -> Any:
    from pipeline.envs.balatro_live import GameStateEncoder

    return GameStateEncoder(mode=env_cfg.mode, stake=env_cfg.stake, deck=env_cfg.deck,
                            endless=bool(env_cfg.endless))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _answers(url: str) -> bool:
    """Something accepts TCP connections at the URL's host and port."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- the app
def create_app(cfg: DictConfig) -> FastAPI:
    """The FastAPI app serving the agent that `cfg` builds (the policy is loaded now, so a
    bad serve.policy fails before anything listens)."""
    service = AgentService(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="pipeline agent API",
                  description=f"Serves agent={cfg.agent.name} on env={cfg.env.name}. "
                              "A game sends its state to POST /act and gets an action back.",
                  version="1", lifespan=lifespan)
    app.state.service = service

    def unprocessable(ex: Unprocessable) -> HTTPException:
        return HTTPException(422, [{"loc": ["body", ex.field], "msg": str(ex),
                                    "type": "value_error"}])

    @app.post("/act", response_model=ActResponse, tags=["agent"],
              summary="A game state in, an action out (and online learning)")
    def act(request: ActRequest) -> ActResponse:
        try:
            return service.act(request)
        except Unprocessable as ex:
            raise unprocessable(ex) from None

    @app.get("/metrics", response_model=Metrics, tags=["agent"],
             summary="Live training counters of the served agent")
    def metrics() -> Metrics:
        return service.metrics()

    @app.post("/mlflow/start_run", response_model=RunInfo, tags=["mlflow"],
              summary="Start an MLflow run; /act's episodes and updates are logged to it",
              responses={409: {"description": "a run is already active, or tracking=none"},
                         503: {"description": "the tracking store cannot be used"}})
    def start_run(run_name: Annotated[str | None, Query(
            max_length=250, description="run name; default {env}__{agent}__serve")] = None
                  ) -> RunInfo:
        return service.start_run(run_name)

    @app.post("/mlflow/end_run", response_model=RunInfo, tags=["mlflow"],
              summary="End the active MLflow run",
              responses={409: {"description": "no run is active, or tracking=none"}})
    def end_run() -> RunInfo:
        return service.end_run()

    @app.get("/mlflow/ui_info", response_model=UiInfo, tags=["mlflow"],
             summary="Where the MLflow UI is and how to start it")
    def ui_info() -> UiInfo:
        return service.ui_info()

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness")
    def health() -> Health:
        return service.health()

    return app


def main(cfg: DictConfig) -> None:
    """What `python -m pipeline.serve` runs: check the config, build the app, serve it."""
    from pipeline.cli import UsageError
    from pipeline.config import validate
    from pipeline.serve.ui import port_taken

    validate(cfg)
    host, port = str(cfg.serve.host), int(cfg.serve.port)
    for key in ("port", "ui_port"):
        if not 1 <= int(cfg.serve[key]) <= 65535:
            raise ConfigError(f"serve.{key}: {cfg.serve[key]} is not a TCP port "
                              "(expected 1..65535)")
    if port_taken(host, port):
        raise UsageError(f"serve.port: port {port} is taken (pick another with "
                         f"serve.port={port + 1})")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serve.host=%s: the API (no authentication) is reachable from the network",
                    host)
    import torch
    import uvicorn

    torch.set_num_threads(cfg.run.torch_threads)
    app = create_app(cfg)
    print(f"Agent API for agent={cfg.agent.name} on env={cfg.env.name}: http://{host}:{port} "
          f"(docs: http://{host}:{port}/docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
