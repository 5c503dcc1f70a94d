"""Structured-config schemas: every YAML under conf/ is checked against one of these.

An unknown key or a wrongly typed value fails at composition; `validate` adds the range
checks a type cannot express. Each group option's YAML names its schema first in its
defaults list (e.g. conf/env/balatro.yaml starts with `- _balatro_schema`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that is out of range; the message is one line naming the key."""


# ---------------------------------------------------------------- env
@dataclass
class BalatroEnvConfig:
    _target_: str = "pipeline.envs.balatro.BalatroEnv"
    name: str = "balatro"
    mode: str = "run"
    stake: str = "white"
    deck: str = "red"
    start_ante: int = 1
    blind: str = "small"
    endless: bool = False
    max_steps: int = 2000
    render_mode: Optional[str] = "rgb_array"
    reward: str = "overkill"


# ---------------------------------------------------------------- agents
@dataclass
class DQNAgentConfig:
    _target_: str = "pipeline.agents.dqn.DQNAgent"
    name: str = "dqn"
    lr: float = 5e-4
    lr_end: Optional[float] = None
    lr_decay_steps: int = 0
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 1_000
    tau: float = 1.0
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 20_000
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    double: bool = True
    dueling: bool = False
    n_step: int = 1
    max_grad_norm: float = 10.0
    device: str = "auto"
    network: str = "auto"
    action_hidden: int = 64
    guide: str = "none"
    guide_episodes: float = 0.25


@dataclass
class RandomAgentConfig:
    _target_: str = "pipeline.agents.baselines.RandomAgent"
    name: str = "random"


@dataclass
class HeuristicAgentConfig:
    _target_: str = "pipeline.agents.baselines.HeuristicAgent"
    name: str = "heuristic"


# ---------------------------------------------------------------- tracking
@dataclass
class MLflowTrackingConfig:
    _target_: str = "pipeline.tracking.mlflow_tracker.MLflowTracker"
    uri: str = "sqlite:///outputs/mlflow.db"
    artifact_dir: Optional[str] = None
    experiment: Optional[str] = None
    flush_interval_s: float = 2.0
    spool_dir: str = "outputs/spool"


@dataclass
class NullTrackingConfig:
    _target_: str = "pipeline.tracking.null.NullTracker"


# ---------------------------------------------------------------- run
@dataclass
class RunConfig:
    total_steps: int = 100_000
    eval_every: int = 25_000
    eval_episodes: int = 20
    eval_seed: int = 10_000
    checkpoint_every: int = 25_000
    log_every: int = 1_000
    resume: Optional[str] = None
    init_from: Optional[str] = None
    objective: str = "eval/ep_return"
    max_cost_usd: Optional[float] = None
    torch_threads: int = 1
    progress: bool = True


@dataclass
class Config:
    env: Any = MISSING
    agent: Any = MISSING
    tracking: Any = MISSING
    callbacks: Any = field(default_factory=dict)
    run: RunConfig = field(default_factory=RunConfig)
    seed: int = 0
    name: Optional[str] = None


# ---------------------------------------------------------------- serve (python -m pipeline.serve)
@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    policy: Optional[str] = None
    learn: bool = False
    explore: bool = False
    ui_port: int = 5000


@dataclass
class ServeAppConfig(Config):
    serve: ServeConfig = field(default_factory=ServeConfig)


def _serve_app_schema() -> DictConfig:
    """conf/serve.yaml's schema: the training config plus a typed `serve` section.

    serve.yaml extends config.yaml (`defaults: [config, _serve_app_schema, _self_]`). A
    schema merged after config.yaml would reset everything config.yaml composed (groups,
    experiment=, debug=) to the dataclass defaults; a MISSING value never overrides, so
    Config's own keys are MISSING here and only `serve` is filled. The root then takes this
    type: a struct that also has `serve`, whose unknown keys still fail.
    """
    node = OmegaConf.structured(ServeAppConfig)
    for key in node:
        if key != "serve":
            node[key] = MISSING
    return node


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="_config_schema", node=Config)
    cs.store(group="env", name="_balatro_schema", node=BalatroEnvConfig)
    cs.store(group="agent", name="_dqn_schema", node=DQNAgentConfig)
    cs.store(group="agent", name="_random_schema", node=RandomAgentConfig)
    cs.store(group="agent", name="_heuristic_schema", node=HeuristicAgentConfig)
    cs.store(group="tracking", name="_mlflow_schema", node=MLflowTrackingConfig)
    cs.store(group="tracking", name="_none_schema", node=NullTrackingConfig)
    cs.store(name="_serve_app_schema", node=_serve_app_schema())
    _register_optional(cs)


def _register_optional(cs: ConfigStore) -> None:
    """Schemas that live beside their env or agent (their modules import no heavy dependency:
    pyboy, openai and dspy load only when an env or agent is built)."""
    from pipeline.agents.llm.dspy_agent import DSPyAgentConfig
    from pipeline.agents.llm.openai_agent import OpenAIAgentConfig

    cs.store(group="agent", name="_openai_schema", node=OpenAIAgentConfig)
    cs.store(group="agent", name="_dspy_schema", node=DSPyAgentConfig)
    from pipeline.envs.balatro_live import BalatroLiveEnvConfig

    cs.store(group="env", name="_balatro_live_schema", node=BalatroLiveEnvConfig)
    try:
        from pipeline.envs.gameboy import GameBoyEnvConfig
        from pipeline.envs.pokemon_red import PokemonRedEnvConfig
    except ImportError:
        return
    cs.store(group="env", name="_gameboy_schema", node=GameBoyEnvConfig)
    cs.store(group="env", name="_pokemon_red_schema", node=PokemonRedEnvConfig)


# ---------------------------------------------------------------- range checks
_POSITIVE = ("agent.action_hidden", "agent.lr", "agent.lr_end", "agent.batch_size",
             "agent.buffer_size", "agent.train_freq", "agent.gradient_steps", "agent.n_step",
             "env.max_steps", "run.log_every", "run.torch_threads", "run.max_cost_usd")
_NON_NEGATIVE = ("run.total_steps", "run.eval_every", "run.eval_episodes", "run.checkpoint_every",
                 "agent.learning_starts", "agent.target_update_interval",
                 "agent.eps_decay_steps", "agent.lr_decay_steps", "agent.max_grad_norm", "seed",
                 "env.start_ante")
Q_NETWORKS = ("auto", "mlp", "balatro")   # agent.network (pipeline/agents/networks.py)
GUIDES = ("none", "heuristic")             # agent.guide (pipeline/agents/dqn.py)
_CHOICES = {"agent.network": Q_NETWORKS, "agent.guide": GUIDES}
_UNIT_INTERVAL = ("agent.gamma", "agent.tau", "agent.eps_start", "agent.eps_end",
                  "agent.guide_episodes")


def validate(cfg: DictConfig) -> None:
    """Range checks; raises ConfigError naming the key, the value and what was expected."""
    for key in _POSITIVE:
        value = OmegaConf.select(cfg, key)
        if value is not None and value <= 0:
            raise ConfigError(f"{key}: {value} is not allowed (expected a number > 0)")
    for key in _NON_NEGATIVE:
        value = OmegaConf.select(cfg, key)
        if value is not None and value < 0:
            raise ConfigError(f"{key}: {value} is not allowed (expected a number >= 0)")
    for key in _UNIT_INTERVAL:
        value = OmegaConf.select(cfg, key)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: {value} is not allowed (expected a number in [0, 1])")
    if OmegaConf.select(cfg, "run.resume") and OmegaConf.select(cfg, "run.init_from"):
        raise ConfigError("run.init_from: cannot be combined with run.resume (resume continues "
                          "a run with its own agent; init_from starts a new run from a trained one)")
    for key, allowed in _CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not allowed (expected one of {list(allowed)})")
