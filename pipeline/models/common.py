"""What the models-from-code files and the best-model callback share.

A policy network travels as two plain files, `weights.pt` (a state dict, loaded with
`weights_only=True`) and `spec.json` (the QNetwork's constructor arguments), so loading
it runs no pickled code. Envs and agents are rebuilt from a run's resolved config the
same way `pipeline.run.build` does. mlflow is imported only by the functions that build
signatures; torch only where a network is touched.
"""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
DQN_POLICY_FILE = MODELS_DIR / "dqn_policy.py"
GAME_SESSION_FILE = MODELS_DIR / "game_session.py"

# Settings that only matter for training; a model that only acts uses small/CPU values.
_INFERENCE_AGENT_OVERRIDES = {"buffer_size": 1, "device": "cpu"}


# ---------------------------------------------------------------- requirements
def pip_requirements() -> list[str]:
    """This package and what loading its models imports, pinned to the installed versions.

    Passing these explicitly skips MLflow's requirement inference (about 6 s per model).
    """
    reqs = []
    for dist in ("pipeline", "mlflow", "torch", "numpy", "gymnasium", "hydra-core",
                 "omegaconf", "pillow"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            reqs.append(dist)
            continue
        reqs.append(f"{dist}=={version.split('+')[0]}")  # torch 2.13.0+cpu -> 2.13.0
    return reqs


# ---------------------------------------------------------------- networks
def network_spec(net: Any, obs_dtype: Any = np.float32) -> dict[str, Any]:
    """The constructor arguments of a Q-network (its `spec()`: kind, shapes, widths) and
    the observation dtype it expects (uint8 screens are scaled inside the network)."""
    if not callable(getattr(net, "spec", None)):
        raise TypeError(f"expected a Q-network from pipeline.agents.networks, got {type(net).__name__}")
    return {**net.spec(), "obs_dtype": np.dtype(obs_dtype).name}


def save_network(net: Any, directory: str | Path, obs_dtype: Any = np.float32) -> dict[str, str]:
    """Write weights.pt and spec.json under `directory`; returns them as pyfunc artifacts."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, spec = directory / "weights.pt", directory / "spec.json"
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
    spec.write_text(json.dumps(network_spec(net, obs_dtype)))
    return {"weights": str(weights), "spec": str(spec)}


def load_spec(spec: str | Path) -> dict[str, Any]:
    return json.loads(Path(spec).read_text())


def load_network(weights: str | Path, spec: str | Path) -> Any:
    """The Q-network saved by `save_network`, on the CPU, in eval mode."""
    import torch

    from pipeline.agents.networks import build_q_network

    s = {k: v for k, v in load_spec(spec).items() if k != "obs_dtype"}
    s.setdefault("kind", "mlp")   # specs written before there were several kinds
    net = build_q_network(s.pop("kind"), tuple(s.pop("obs_shape")), int(s.pop("n_actions")),
                          tuple(s.pop("hidden_sizes")), bool(s.pop("dueling")), **s)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def cpu_copy(net: Any, state: dict[str, Any] | None = None) -> Any:
    """A detached CPU copy of `net` (optionally with another state dict loaded into it)."""
    import copy

    clone = copy.deepcopy(net).cpu()
    if state is not None:
        clone.load_state_dict(state)
    return clone.eval()


def greedy_actions(net: Any, obs: np.ndarray, masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Best legal action and all Q-values for a batch of observations."""
    import torch

    from pipeline.agents.dqn import masked_argmax

    device = next(net.parameters()).device
    with torch.no_grad():
        q = net(torch.as_tensor(obs, device=device))
        m = None if masks is None else torch.as_tensor(masks, dtype=torch.bool, device=device)
        actions = masked_argmax(q, m)
    return actions.cpu().numpy(), q.cpu().numpy()


class GreedyPolicy:
    """An agent-like wrapper (`act(obs, info, explore=False)`) over a Q-network, for
    `pipeline.run.evaluate`: the best legal action by `info["action_mask"]`."""

    def __init__(self, net: Any) -> None:
        self.net = net.eval()

    def act(self, obs: np.ndarray, info: dict[str, Any], *, explore: bool = False) -> int:
        mask = info.get("action_mask")
        actions, _ = greedy_actions(self.net, np.asarray(obs)[None],
                                    None if mask is None else np.asarray(mask, bool)[None])
        return int(actions[0])


# ---------------------------------------------------------------- envs and agents from a config
def load_config(path: str | Path) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.load(path)


def build_env(cfg: Any, **overrides: Any) -> Any:
    """The env of a run's config (`cfg.env`), with `overrides` for keys the env has."""
    from omegaconf import OmegaConf

    import pipeline.envs  # noqa: F401 - registers the envs with gymnasium
    from pipeline.run import instantiate_component

    node = OmegaConf.to_container(cfg.env, resolve=True)
    node.update({k: v for k, v in overrides.items() if k in node})
    return instantiate_component(node, "env")


def build_agent(cfg: Any, env: Any, weights: str | Path | None = None) -> Any:
    """The agent of a run's config for `env`, set up to act (no replay memory, CPU), with
    its policy network's weights loaded from `weights` when given."""
    from omegaconf import OmegaConf

    from pipeline.run import instantiate_component

    node = OmegaConf.to_container(cfg.agent, resolve=True)
    node.update({k: v for k, v in _INFERENCE_AGENT_OVERRIDES.items() if k in node})
    agent = instantiate_component(node, "agent", observation_space=env.observation_space,
                                  action_space=env.action_space, env=env.unwrapped,
                                  seed=int(cfg.get("seed", 0)))
    if weights is not None:
        import torch

        net = agent.policy_model() if hasattr(agent, "policy_model") else None
        if net is None:
            raise ValueError(f"agent {cfg.agent.get('name')}: has no policy network to load "
                             f"{weights} into")
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        net.eval()
    return agent


# ---------------------------------------------------------------- signatures (mlflow types)
def dqn_policy_signature() -> Any:
    """Rows of {obs: flat observation, action_mask: legal actions (optional)} ->
    {action, q_values}."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(Array(DataType.double), "obs"),
                       ColSpec(Array(DataType.boolean), "action_mask", required=False)]),
        outputs=Schema([ColSpec(DataType.long, "action"),
                        ColSpec(Array(DataType.double), "q_values")]))


def dqn_policy_example(obs: np.ndarray, mask: np.ndarray | None) -> Any:
    import pandas as pd

    row: dict[str, Any] = {"obs": np.asarray(obs, dtype=np.float64).ravel().tolist()}
    if mask is not None:
        row["action_mask"] = np.asarray(mask, dtype=bool).tolist()
    return pd.DataFrame([row])


def network_signature(spec: dict[str, Any]) -> Any:
    """For the mlflow.pytorch flavor: a batch of observations -> one Q-value per action."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(spec.get("obs_dtype", "float32")),
                                  (-1, *spec["obs_shape"]))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, spec["n_actions"]))]))


GAME_SESSION_FIELDS = ("action", "headless", "session_id", "steps", "seed")


def game_session_signature() -> Any:
    """Every input field is optional and of any type: the model itself checks them and
    answers bad input with an error payload (a typed schema would raise before it runs)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), f, required=False) for f in GAME_SESSION_FIELDS]),
        outputs=Schema([ColSpec(DataType.string, "status"),
                        ColSpec(DataType.string, "screen_base64", required=False),
                        ColSpec(AnyType(), "action_executed", required=False),
                        ColSpec(DataType.boolean, "success"),
                        ColSpec(DataType.string, "ai_response", required=False),
                        ColSpec(DataType.string, "error", required=False),
                        ColSpec(DataType.string, "session_id", required=False)]))


def game_session_example() -> dict[str, Any]:
    return {"action": "start_game", "headless": True}
