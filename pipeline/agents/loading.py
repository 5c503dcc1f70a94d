"""Loading a trained policy into a freshly built agent: `serve.policy` (the agent API) and
`run.init_from` (a run that starts from a trained agent: evaluation on new seeds with
run.total_steps=0, or further training) take the same three kinds of source:

- a checkpoint file (checkpoints/latest.pt): the whole agent (networks, optimizer, replay
  buffer, counters, RNGs);
- an MLflow run id: that run's checkpoints/latest.pt, fetched from the store;
- an MLflow model URI (`models:/name/1`, `models:/name@best`, `runs:/<run id>/<model path>`): a
  network logged with mlflow.pytorch, loaded into the agent's online and target networks.

Every failure is a ConfigError naming the setting (`field`) and what was expected.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.config import ConfigError
from pipeline.tracking.redact import redact_text

log = logging.getLogger(__name__)


def load_policy(agent: Any, policy: str, tracker: Any, field: str) -> None:
    """Load `policy` (a checkpoint file, a run id or a model URI) into `agent`."""
    if policy.startswith(("models:/", "runs:/")):
        _load_network(agent, policy, tracker, field)
        return
    from pipeline.callbacks.checkpoint import load_checkpoint_or_run
    from pipeline.tracking.mlflow_tracker import TrackingError

    path = Path(policy)
    try:
        payload = load_checkpoint_or_run(policy, tracker)
    except TrackingError as ex:   # unknown run id or no checkpoint
        raise ConfigError(f"{field}: {policy} is neither a checkpoint file nor a run "
                          f"with a checkpoint ({_first_line(ex)})") from None
    except ValueError as ex:
        raise ConfigError(str(ex).replace("run.resume:", f"{field}:", 1)) from None
    try:
        agent.load_state_dict(payload["agent"])
    except (KeyError, RuntimeError, ValueError, TypeError) as ex:
        raise ConfigError(f"{field}: {path} was not written by this agent and env "
                          f"({type(ex).__name__}: {_first_line(ex)})") from None
    log.info("Loaded the agent from %s (step %s)", path, payload.get("step"))


def _load_network(agent: Any, uri: str, tracker: Any, field: str) -> None:
    import torch

    online = getattr(agent, "online", None)
    if not isinstance(online, torch.nn.Module):
        raise ConfigError(f"{field}: {uri} is a network; this agent has none to load it "
                          "into (use agent=dqn, or a checkpoint file)")
    store = getattr(tracker, "uri", None)
    if store is None:
        raise ConfigError(f"{field}: {uri} lives in an MLflow store; tracking=none has "
                          "none (use tracking=mlflow with its tracking.uri)")
    try:
        net = _load_pytorch_model(tracker, uri)
    except Exception as ex:  # noqa: BLE001 - unknown model, no pytorch flavor, unreachable store
        raise ConfigError(f"{field}: cannot load {uri} from {redact_text(store)} "
                          f"({type(ex).__name__}: {_first_line(ex)})") from None
    if not isinstance(net, torch.nn.Module):
        raise ConfigError(f"{field}: {uri} is a {type(net).__name__}, not a torch network "
                          "(expected a model logged with mlflow.pytorch)")
    try:
        with torch.no_grad():
            online.load_state_dict(net.state_dict())  # in place: the agent's views stay valid
            agent.target.load_state_dict(net.state_dict())
    except RuntimeError as ex:
        raise ConfigError(f"{field}: {uri} does not fit this agent and env "
                          f"({_first_line(ex)})") from None
    log.info("Loaded the policy network from %s", uri)


def _load_pytorch_model(tracker: Any, uri: str) -> Any:
    """The tracker's loader when it has one; mlflow.pytorch against its store otherwise."""
    loader = getattr(tracker, "load_pytorch_model", None)
    if loader is not None:
        return loader(uri)
    import mlflow.pytorch
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(tracker.uri):
        return mlflow.pytorch.load_model(uri, map_location="cpu")


def _first_line(ex: BaseException) -> str:
    lines = str(ex).strip().splitlines()
    return redact_text(lines[0]) if lines else ""
