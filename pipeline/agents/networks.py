"""Q-networks: an MLP for vector observations, the Nature CNN for stacked screens, and
(pipeline/agents/balatro_qnet.py) a network that scores Balatro's card subsets."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.config import Q_NETWORKS as NETWORKS  # one list; validate() checks it before anything runs


def build_q_network(kind: str, obs_shape: tuple[int, ...], n_actions: int,
                    hidden_sizes: tuple[int, ...] = (256, 256), dueling: bool = False,
                    **kwargs: Any) -> nn.Module:
    """A Q-network by kind: "mlp" (`QNetwork`: MLP, or CNN + MLP for screens) or "balatro"
    (`BalatroQNetwork`). "auto" is resolved by the caller from the env (see
    `DQNAgent`); here it means "mlp"."""
    if kind == "balatro":
        from pipeline.agents.balatro_qnet import BalatroQNetwork

        return BalatroQNetwork(tuple(obs_shape), n_actions, tuple(hidden_sizes), dueling, **kwargs)
    if kind in ("mlp", "auto"):
        return QNetwork(tuple(obs_shape), n_actions, tuple(hidden_sizes), dueling)
    raise ValueError(f"agent.network: {kind!r} is not a network (expected one of {list(NETWORKS)})")


class QNetwork(nn.Module):
    """Maps observations to one Q-value per action; optional dueling head."""

    kind = "mlp"

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int,
                 hidden_sizes: tuple[int, ...] = (256, 256), dueling: bool = False) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.n_actions = n_actions
        self.dueling = dueling
        if len(obs_shape) == 3:
            self.encoder, features = _nature_cnn(obs_shape)
        elif len(obs_shape) == 1:
            self.encoder, features = nn.Flatten(), int(obs_shape[0])
        else:
            raise ValueError(f"observation shape {obs_shape}: expected a vector (n,) "
                             "or a stacked screen (frames, height, width)")
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(features, n_actions)
        self.value = nn.Linear(features, 1) if dueling else None

    def spec(self) -> dict[str, Any]:
        """Constructor arguments (what `build_q_network` takes)."""
        return {"kind": self.kind, "obs_shape": list(self.obs_shape), "n_actions": self.n_actions,
                "hidden_sizes": [m.out_features for m in self.body if isinstance(m, nn.Linear)],
                "dueling": self.dueling}

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.dtype == torch.uint8:
            obs = obs.float().div_(255.0)
        x = self.body(self.encoder(obs))
        q = self.head(x)
        if self.value is not None:
            q = self.value(x) + q - q.mean(dim=1, keepdim=True)
        return q


def _nature_cnn(obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    channels = obs_shape[0]
    cnn = nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        features = int(cnn(torch.zeros(1, *obs_shape)).shape[1])
    return cnn, features
