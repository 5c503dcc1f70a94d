"""The LLM agents against the local stub server (tests/llm_server.py): parsing, retries,
feedback and fallback, metrics, vision, configuration errors. No MLflow here (see
test_llm_pipeline.py for whole runs with tracing)."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from pipeline.agents.base import Transition
from pipeline.agents.llm import build_agent
from pipeline.agents.llm.base import (STEP_KEYS, LLMEndpointError, ModelPrice, backoff_delay,
                                      cost_usd, price_for)
from pipeline.agents.llm.prompts import split_reply
from pipeline.envs.balatro import BalatroEnv
from tests import roms
from tests.llm_server import LLMStubServer

KEY = "sk-test-DO-NOT-LEAK-1234567890abcdef"
AGENTS = ("openai", "dspy")


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    with LLMStubServer(hang_s=0.6, required_key=KEY) as stub:
        yield stub


def make(name: str, env, server: LLMStubServer, **overrides):
    config = {"name": name, "model": "stub", "base_url": server.base_url,
              "api_key_env": "LLM_TEST_KEY", "timeout_s": 0.3, "backoff_base_s": 0.01,
              "backoff_max_s": 0.05, "prices": {"stub": [1.0, 2.0]}, **overrides}
    return build_agent(config, env, seed=0)


def play_episode(agent, env, seed: int = 1, limit: int = 50) -> tuple[int, dict]:
    obs, info = env.reset(seed=seed)
    for step in range(1, limit + 1):
        action = agent.act(obs, info)
        assert info["action_mask"][action], "the agent played an illegal action"
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated,
                                 info["action_mask"], info))
        metrics = agent.update(step)
        assert set(metrics) == set(STEP_KEYS)
        obs = next_obs
        if terminated or truncated:
            return step, agent.episode_metrics()
    raise AssertionError("the episode did not end")


# ---------------------------------------------------------------- pure helpers
@pytest.mark.parametrize("text,reasoning,answer", [
    ("Pairs score well.\nAction: play 1 2", "Pairs score well.", "play 1 2"),
    ("**Action:** `press up`.", "", "press up"),
    ("<think>the shop is poor</think>\nACTION = leave", "the shop is poor", "leave"),
    ("I will discard the low cards.\ndiscard 6 7 8", "I will discard the low cards.",
     "discard 6 7 8"),
    ("", "", ""),
])
def test_split_reply(text, reasoning, answer):
    assert split_reply(text) == (reasoning, answer)


def test_backoff_is_exponential_with_jitter_and_honours_retry_after():
    assert backoff_delay(0, 1.0, 30.0, 0.0) == 0.5 and backoff_delay(0, 1.0, 30.0, 1.0) == 1.0
    assert 4.0 <= backoff_delay(3, 1.0, 30.0, 0.5) <= 8.0
    assert backoff_delay(10, 1.0, 30.0, 0.99) <= 30.0
    assert backoff_delay(2, 1.0, 30.0, 0.5, retry_after=7.0) == 7.0
    assert backoff_delay(2, 1.0, 30.0, 0.5, retry_after=120.0) == 30.0


def test_price_table_lookup_and_cost():
    prices = {"gpt-4o": ModelPrice(2.5, 10.0), "gpt-4o-mini": ModelPrice(0.15, 0.6)}
    assert price_for("gpt-4o-mini", prices).prompt == 0.15
    assert price_for("openai/gpt-4o", prices).completion == 10.0
    assert price_for("gpt-4o-mini-2024-07-18", prices).prompt == 0.15  # longest prefix
    assert price_for("llama3.2:3b", prices) is None
    assert cost_usd(1_000_000, 500_000, prices["gpt-4o"]) == pytest.approx(7.5)
    assert cost_usd(100, 100, None) == 0.0


@pytest.mark.parametrize("name", AGENTS)
def test_configuration_errors_name_the_key(name, server, monkeypatch):
    env = BalatroEnv(mode="blind")
    monkeypatch.delenv("LLM_TEST_KEY")
    with pytest.raises(ValueError, match=r"^agent\.api_key_env: environment variable LLM_TEST_KEY"):
        make(name, env, server)
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    with pytest.raises(ValueError, match=r"^agent\.fallback: 'best'"):
        make(name, env, server, fallback="best")
    with pytest.raises(ValueError, match=r"^agent\.prices\.stub: "):
        make(name, env, server, prices={"stub": [1.0]})
    with pytest.raises(ValueError, match=r"^agent: unknown key\(s\) \['api_key'\]"):
        make(name, env, server, api_key="sk-never-in-config")
    with pytest.raises(ValueError, match=r"needs an env with the text interface"):
        build_agent({"name": name, "api_key_env": None}, _NoText())


class _NoText:
    """An env without the text interface."""

    observation_space = gym.spaces.Box(0, 1, (2,))
    action_space = gym.spaces.Discrete(2)


# ---------------------------------------------------------------- against the stub
@pytest.mark.parametrize("name", AGENTS)
def test_plays_a_balatro_blind_with_legal_moves(name, server):
    env = BalatroEnv(mode="blind")
    agent = make(name, env, server)
    steps, totals = play_episode(agent, env)
    assert totals["llm/ep_calls"] == steps and totals["llm/ep_invalid_actions"] == 0
    assert totals["llm/ep_fallback_actions"] == 0 and totals["llm/ep_retries"] == 0
    assert totals["llm/ep_prompt_tokens"] > 0 and totals["llm/ep_completion_tokens"] > 0
    expected_cost = (totals["llm/ep_prompt_tokens"] * 1.0
                     + totals["llm/ep_completion_tokens"] * 2.0) / 1e6
    assert totals["llm/ep_cost_usd"] == pytest.approx(expected_cost)
    assert server.auth_headers == {f"Bearer {KEY}"}
    # the last turns are in the prompt, the played commands with them
    assert "You answered: play 1 2 3 4 5" in server.prompts[-1]
    log = agent.reasoning_log
    assert len(log) == steps and log[0]["action"] == "play 1 2 3 4 5"
    assert "Scripted policy" in log[0]["reasoning"]
    json.dumps(log)  # the artifact is JSON lines


@pytest.mark.parametrize("name", AGENTS)
def test_faults_are_retried_then_refused_answers_get_feedback_then_a_fallback(name, server):
    env = BalatroEnv(mode="blind")
    agent = make(name, env, server, max_retries=4)
    server.inject("429", "500", "hang", "malformed", "nonsense", "nonsense", "nonsense")
    _, totals = play_episode(agent, env)
    assert totals["llm/ep_retries"] == 4  # 429, 500, hang, malformed
    assert totals["llm/ep_invalid_actions"] == 3  # nonsense twice on step 1, once on step 2
    assert totals["llm/ep_fallback_actions"] == 1 and totals["llm/ep_errors"] == 0
    assert all(server.stats[f"fault_{f}"] == 1 for f in ("429", "500", "hang", "malformed"))
    first, second = agent.reasoning_log[:2]
    assert first["fallback"] and first["refused"] and first["retries"] == 4
    assert not second["fallback"] and second["refused"] and second["invalid_actions"] == 1
    assert any("was refused" in prompt for prompt in server.prompts)


@pytest.mark.parametrize("name", AGENTS)
def test_endpoint_down_through_every_retry_plays_a_fallback(name, server):
    env = BalatroEnv(mode="blind")
    agent = make(name, env, server, max_retries=2, fallback="first")
    server.inject("500", "500", "500")
    obs, info = env.reset(seed=1)
    action = agent.act(obs, info)
    assert action == int(np.flatnonzero(info["action_mask"])[0])
    metrics = agent.update(1)
    assert metrics["llm/errors"] == 1 and metrics["llm/retries"] == 2
    assert metrics["llm/calls"] == 3 and metrics["llm/fallback_actions"] == 1
    assert agent.update(2)["llm/calls"] == 0  # the step's counts were handed over once


@pytest.mark.parametrize("name", AGENTS)
def test_a_refused_key_stops_with_one_clear_error(name, server, monkeypatch):
    env = BalatroEnv(mode="blind")
    monkeypatch.setenv("LLM_TEST_KEY", "sk-wrong")
    agent = make(name, env, server)
    obs, info = env.reset(seed=1)
    with pytest.raises(LLMEndpointError, match=r"refused the request .*agent\.api_key_env"):
        agent.act(obs, info)
    assert server.stats["requests"] == 1  # not retried


@pytest.mark.parametrize("name", AGENTS)
def test_game_boy_screen_goes_to_vision_models(name, server, tmp_path):
    from pipeline.envs.gameboy import GameBoyEnv

    env = GameBoyEnv(str(roms.build_rom(tmp_path / "t.gb")), max_steps=4)
    try:
        agent = make(name, env, server)
        steps, totals = play_episode(agent, env)
        assert steps == 4 and totals["llm/ep_invalid_actions"] == 0
        assert server.stats["images"] == 4
        text_only = make(name, env, server, vision=False)
        play_episode(text_only, env)
        assert server.stats["images"] == 4
    finally:
        env.close()


@pytest.mark.parametrize("name", AGENTS)
def test_evaluation_env_gets_its_own_history_and_counts(name, server):
    train_env, eval_env = BalatroEnv(mode="blind"), BalatroEnv(mode="blind")
    agent = make(name, train_env, server)
    obs, info = train_env.reset(seed=1)
    agent.act(obs, info)
    agent.env = eval_env  # what run.evaluate does
    obs, info = eval_env.reset(seed=2)
    agent.act(obs, info)
    assert "You answered" not in server.prompts[-1]  # no training turns in the evaluation prompt
    assert agent.update(1)["llm/calls"] == 1  # the evaluation step, in its own counts
    agent.env = train_env
    assert agent.env is train_env and len(agent._play.history) == 1
    assert agent.update(1)["llm/calls"] == 1 and agent.run_metrics()["llm/total_calls"] == 2


def test_dspy_program_saves_without_key_and_loads(server, tmp_path):
    env = BalatroEnv(mode="blind")
    agent = make("dspy", env, server, module="predict")
    path = agent.save_program(tmp_path / "program.json")
    saved = path.read_text()
    assert KEY not in saved and "127.0.0.1" not in saved and "instructions" in saved
    loaded = make("dspy", env, server, module="predict", program_path=str(path))
    steps, totals = play_episode(loaded, env)
    assert totals["llm/ep_invalid_actions"] == 0 and loaded.reasoning_log[0]["reasoning"] == ""
    with pytest.raises(ValueError, match=r"^agent\.program_path: "):
        make("dspy", env, server, program_path=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"^agent\.module: 'react'"):
        make("dspy", env, server, module="react")
