"""Every config group option composes against its schema; range checks name the key."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from pipeline.config import ConfigError, validate
from tests.conftest import CONF


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_defaults_are_balatro_dqn_mlflow(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.env.name, cfg.agent.name) == ("balatro", "dqn")
    assert cfg.tracking._target_.endswith("MLflowTracker")
    assert {"metrics", "checkpoint", "progress", "media"} <= set(cfg.callbacks)
    validate(cfg)


@pytest.mark.parametrize("group", ["env", "agent", "tracking", "callbacks", "debug"])
def test_every_group_option_composes(compose_cfg, group):
    options = _options(group)
    assert options, f"conf/{group}/ has no options"
    for option in options:
        cfg = compose_cfg(f"{group}={option}")
        OmegaConf.to_container(cfg, resolve=False)  # every node is well formed
        if group in ("env", "agent"):
            assert cfg[group].name == option


def test_every_env_agent_pair_composes(compose_cfg):
    for env in _options("env"):
        for agent in _options("agent"):
            cfg = compose_cfg(f"env={env}", f"agent={agent}")
            assert cfg.env.name == env and cfg.agent.name == agent


def test_schema_fills_defaults_and_keeps_types(compose_cfg):
    cfg = compose_cfg("agent.lr=0.001", "run.total_steps=5")
    assert cfg.agent.lr == 0.001 and isinstance(cfg.run.total_steps, int)
    assert OmegaConf.get_type(cfg.run).__name__ == "RunConfig"


@pytest.mark.parametrize("override,key", [
    ("run.total_steps=-5", "run.total_steps"),
    ("agent.lr=-1", "agent.lr"),
    ("agent.gamma=1.5", "agent.gamma"),
    ("run.eval_episodes=-2", "run.eval_episodes"),
    ("agent.guide=teacher", "agent.guide"),
    ("agent.guide_episodes=1.5", "agent.guide_episodes"),
    ("agent.lr_end=0", "agent.lr_end"),
    ("agent.lr_decay_steps=-1", "agent.lr_decay_steps"),
])
def test_validate_names_the_key(compose_cfg, override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: .*expected"):
        validate(compose_cfg(override))


def test_debug_smoke_is_short(compose_cfg):
    assert compose_cfg("debug=smoke").run.total_steps <= 2000


def test_the_full_run_recipe_and_the_head_to_head_dqn_share_one_preset(compose_cfg):
    """experiment=balatro_full_run_dqn and the DQN jobs of experiment=balatro_head_to_head
    train with the same settings (conf/presets/balatro_full_run_dqn.yaml)."""
    recipe = compose_cfg("experiment=balatro_full_run_dqn")
    h2h = compose_cfg("experiment=balatro_head_to_head", "agent=dqn", "seed=0")
    assert recipe.env.mode == h2h.env.mode == "run"
    assert recipe.agent == h2h.agent
    assert recipe.agent.network == "balatro" and recipe.agent.gamma == 0.995
    assert recipe.agent.guide == "heuristic" and recipe.agent.guide_episodes == 0.25
    assert recipe.agent.lr_end == 2.5e-5
    assert recipe.agent.lr_decay_steps == recipe.run.total_steps == 300_000
    assert h2h.agent.lr_decay_steps == h2h.run.total_steps
    for key in ("total_steps", "eval_every", "checkpoint_every"):
        assert recipe.run[key] == h2h.run[key]
    assert (recipe.run.eval_episodes, h2h.run.eval_episodes) == (30, 20)
