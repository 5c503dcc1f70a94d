"""LLM agents: `agent=openai` (openai client) and `agent=dspy` (a DSPy program).

`build_agent(config, env)` builds one outside the run loop (a game session, the agent API,
a pyfunc model) from the same dict as conf/agent/openai.yaml or dspy.yaml. Nothing heavy is
imported here: openai and dspy load when an agent is built.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

AGENTS = {"openai": "pipeline.agents.llm.openai_agent.OpenAIAgent",
          "dspy": "pipeline.agents.llm.dspy_agent.DSPyAgent"}


def build_agent(config: Mapping[str, Any], env: Any, *, seed: int = 0) -> Any:
    """An LLM agent playing `env` from an agent config (`name` or `_target_` picks the class;
    every other key is a setting, missing ones take their defaults)."""
    settings = dict(config)
    name = settings.pop("name", None)
    target = settings.pop("_target_", None) or AGENTS.get(str(name))
    if target is None:
        raise ValueError(f"agent.name: {name!r} is not an LLM agent (expected one of "
                         f"{sorted(AGENTS)}, or give _target_)")
    module, _, cls = target.rpartition(".")
    agent_class = getattr(importlib.import_module(module), cls)
    env = getattr(env, "unwrapped", env)
    return agent_class(env.observation_space, env.action_space, env=env, seed=seed, **settings)
