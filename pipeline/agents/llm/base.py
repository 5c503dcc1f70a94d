"""What the OpenAI and DSPy agents share: settings, retries, cost, history, parsing, metrics.

An LLM agent plays any env with the text interface of pipeline/envs/text.py. Each step:
read `env.text_view()` (and the screen for vision models), ask the model, extract the
command (`play 1 3 5`, `press up`, ...) and map it with `env.parse_action`. A refused
answer goes back once with the env's reason; if the second answer fails too, or the
endpoint stays down through every retry, a legal fallback action is played instead. The
run never stops for a misbehaving endpoint (429, 5xx, timeouts, malformed JSON, nonsense
text); it stops with one clear line when the endpoint refuses the request itself (bad key,
unknown model: retrying cannot help).

Per step, `update()` returns the llm/* metrics of the step (averaged and logged by the
MetricsCallback); `episode_metrics()` gives the llm/ep_* totals of each training episode.
Subclasses implement `_request` (one call to the model) and `_failure` (classify an error).
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional

import gymnasium as gym
import numpy as np

from pipeline.agents.base import Transition, legal_actions
from pipeline.agents.llm.prompts import DEFAULT_SYSTEM_PROMPT, FEEDBACK, SYSTEM_PROMPTS
from pipeline.envs.text import IllegalActionError, TextGame

log = logging.getLogger(__name__)

# Per-step metrics (the step's sums); the episode totals use the same names with llm/ep_*.
STEP_KEYS = ("llm/prompt_tokens", "llm/completion_tokens", "llm/tokens", "llm/cost_usd",
             "llm/latency_ms", "llm/calls", "llm/retries", "llm/invalid_actions",
             "llm/fallback_actions", "llm/errors")


@dataclass
class ModelPrice:
    prompt: float = 0.0  # USD per million prompt (input) tokens
    completion: float = 0.0  # USD per million completion (output) tokens


def default_prices() -> dict[str, list[float]]:
    """OpenAI list prices when this was written, [prompt, completion] in USD per million
    tokens; the YAML repeats them and is where to change them."""
    return {"gpt-4o-mini": [0.15, 0.60], "gpt-4o": [2.50, 10.00], "gpt-4.1-nano": [0.10, 0.40],
            "gpt-4.1-mini": [0.40, 1.60], "gpt-4.1": [2.00, 8.00], "o4-mini": [1.10, 4.40]}


@dataclass
class LLMAgentConfig:
    """Settings shared by both LLM agents (conf/agent/openai.yaml and dspy.yaml comment each)."""

    model: str = "gpt-4o-mini"
    base_url: Optional[str] = None
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = 512
    history: int = 4
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    prompt_variant: Optional[str] = None
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    feedback: bool = True
    fallback: str = "random"
    vision: bool = True
    reasoning_steps: int = 50
    tracing: bool = True
    prices: dict[str, list[float]] = field(default_factory=default_prices)


class LLMEndpointError(RuntimeError):
    """The endpoint refused the request itself (auth, unknown model, bad request)."""


class MalformedReply(ValueError):
    """A 200 answer that is not a chat completion (no choices, cut-off JSON)."""


@dataclass
class Failure:
    """How a failed call is handled: retried (after `retry_after` when the server says) or not."""

    retryable: bool
    reason: str
    retry_after: Optional[float] = None


@dataclass
class Reply:
    """One model answer: the extracted command, the reasoning around it, token counts."""

    answer: str
    reasoning: str = ""
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    format_error: Optional[str] = None  # set when the reply did not follow the output format


@dataclass
class Turn:
    state: str  # the text view the model saw
    action: str  # the command that was played (the model's, or the fallback's)


@dataclass
class _Play:
    """Where the agent is playing: the env it reads, this episode's turns, unlogged counts."""

    env: Any
    history: deque
    training: bool = True
    step: Counter = field(default_factory=Counter)
    episode: Counter = field(default_factory=Counter)


class TextPrompt:
    """A stand-in env for an agent used without a game (the pyfunc model): the caller gives
    the state text to `reply` and sets `answer_format`; nothing is parsed or played."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, answer_format: str = "") -> None:
        self.answer_format = answer_format

    def text_view(self) -> str:
        return ""

    def describe_actions(self) -> str:
        return self.answer_format

    def parse_action(self, text: str) -> int:
        return 0

    def action_to_text(self, action: int) -> str:
        return ""


# ---------------------------------------------------------------- pure helpers
def backoff_delay(attempt: int, base_s: float, max_s: float, uniform: float,
                  retry_after: Optional[float] = None) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After when it
    gives one, else exponential backoff with equal jitter, base * 2**attempt * (0.5 + u/2),
    both capped at max_s. `uniform` is a draw in [0, 1)."""
    if retry_after is not None and retry_after >= 0:
        return min(max_s, float(retry_after))
    ceiling = min(max_s, base_s * 2.0 ** attempt)
    return ceiling * (0.5 + 0.5 * uniform)


def price_for(model: str, prices: dict[str, ModelPrice]) -> Optional[ModelPrice]:
    """The price of `model`: an exact entry, else without a provider prefix
    ("openai/gpt-4o" -> "gpt-4o"), else the longest entry it starts with (dated versions)."""
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in prices:
            return prices[name]
    bare = model.rsplit("/", 1)[-1]
    matches = [k for k in prices if bare.startswith(k)]
    return prices[max(matches, key=len)] if matches else None


def cost_usd(prompt_tokens: int, completion_tokens: int, price: Optional[ModelPrice]) -> float:
    if price is None:
        return 0.0
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6


def resolve_api_key(api_key_env: Optional[str]) -> Optional[str]:
    """The key from the environment variable named `api_key_env` (never from a config file)."""
    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise ValueError(f"agent.api_key_env: environment variable {api_key_env} is not set "
                         f"(export {api_key_env}=<your key>, or set agent.api_key_env=null for "
                         "an endpoint that needs no key)")
    return key


def _check(cfg: LLMAgentConfig) -> None:
    """Range checks, one line naming the key (run.py turns a ValueError into exit code 2)."""
    rules = (("max_tokens", cfg.max_tokens > 0, "> 0"), ("history", cfg.history >= 0, ">= 0"),
             ("timeout_s", cfg.timeout_s > 0, "> 0"), ("max_retries", cfg.max_retries >= 0, ">= 0"),
             ("backoff_base_s", cfg.backoff_base_s >= 0, ">= 0"),
             ("backoff_max_s", cfg.backoff_max_s >= 0, ">= 0"),
             ("temperature", 0 <= cfg.temperature <= 2, "in [0, 2]"),
             ("reasoning_steps", cfg.reasoning_steps >= 0, ">= 0"))
    for key, ok, expected in rules:
        if not ok:
            raise ValueError(f"agent.{key}: {getattr(cfg, key)} is not allowed "
                             f"(expected a number {expected})")
    for model, price in (cfg.prices or {}).items():
        if len(price) != 2 or min(price) < 0:
            raise ValueError(f"agent.prices.{model}: {list(price)} is not allowed (expected "
                             "[prompt, completion] in USD per million tokens, both >= 0)")
    if cfg.fallback not in ("random", "first"):
        raise ValueError(f"agent.fallback: {cfg.fallback!r} is not allowed "
                         "(expected random or first)")
    if cfg.prompt_variant is not None and cfg.prompt_variant not in SYSTEM_PROMPTS:
        raise ValueError(f"agent.prompt_variant: {cfg.prompt_variant!r} is not a prompt "
                         f"(expected one of: {', '.join(SYSTEM_PROMPTS)}, or null)")


def make_config(cls: type, config: dict[str, Any]) -> Any:
    """The settings dataclass from keyword arguments (YAML values or a game session's dict)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"agent: unknown key(s) {unknown} for {cls.__name__} "
                         f"(expected some of {sorted(known - {'_target_'})})")
    cfg = cls(**config)
    _check(cfg)
    if cfg.prompt_variant is not None:  # a named prompt replaces system_prompt
        cfg.system_prompt = SYSTEM_PROMPTS[cfg.prompt_variant]
    return cfg


# ---------------------------------------------------------------- the agent
class LLMAgent:
    """The Agent protocol over a chat model; see the module docstring for the step."""

    flavor: ClassVar[str] = ""  # the MLflow autolog integration that traces this agent's calls
    config_class: ClassVar[type] = LLMAgentConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Discrete, *,
                 env: Any = None, seed: int = 0, **config: Any) -> None:
        config.pop("name", None)
        self.cfg = make_config(self.config_class, config)
        env = getattr(env, "unwrapped", env)
        if not isinstance(env, TextGame):
            raise ValueError(f"agent: {type(self).__name__} needs an env with the text interface "
                             "of pipeline/envs/text.py (text_view, describe_actions, parse_action, "
                             f"action_to_text); got {type(env).__name__}")
        self.n_actions = int(action_space.n)
        self.rng = np.random.default_rng(seed)
        self._api_key = resolve_api_key(self.cfg.api_key_env)
        self.price = price_for(self.cfg.model, {k: ModelPrice(*v) for k, v in
                                                (self.cfg.prices or {}).items()})
        if self.price is None:
            log.warning("agent.prices: no price for model %s; llm/cost_usd will be 0",
                        self.cfg.model)
        self._train = self._play = self._new_play(env, training=True)
        self.totals: Counter = Counter()  # the whole run, training and evaluation
        self.turns = 0  # act() calls so far
        self._reasoning: deque[dict[str, Any]] = deque(maxlen=self.cfg.reasoning_steps)

    # ---- what the subclasses provide
    def _request(self, play: _Play, state: str, image: Optional[str],
                 feedback: Optional[str]) -> Reply:
        """One call to the model; raise on any failure (classified by `_failure`)."""
        raise NotImplementedError

    def _failure(self, ex: Exception) -> Optional[Failure]:
        """How to handle `ex`; None when it is not an endpoint failure (then it propagates)."""
        raise NotImplementedError

    # ---- Agent protocol
    @property
    def tracing_flavor(self) -> Optional[str]:
        """Read by run.py: the tracker turns on this MLflow autolog integration for the run."""
        return self.flavor if self.cfg.tracing else None

    @property
    def env(self) -> Any:
        """The env the agent reads (text view, answer format, parse_action)."""
        return self._play.env

    @env.setter
    def env(self, env: Any) -> None:
        """run.evaluate points this at the evaluation env and back: an env other than the
        training env gets a fresh history and its own counts (not in training metrics)."""
        env = getattr(env, "unwrapped", env)
        if env is self._play.env:
            return
        self._play = self._train if env is self._train.env else self._new_play(env, False)

    def act(self, obs: Any, info: dict[str, Any], *, explore: bool = True) -> int:
        """One turn. `explore` is ignored: the temperature decides how varied answers are."""
        play = self._play
        state = play.env.text_view()
        image = self._screen(play.env)
        counts: Counter = Counter()
        start = time.perf_counter()
        first = reply = self._ask(play, state, image, None, counts)
        action, refused = None, None
        if reply is not None:
            action, refused = self._parse(play.env, reply, info)
            if refused is not None:
                counts["llm/invalid_actions"] += 1
                if self.cfg.feedback:
                    feedback = FEEDBACK.format(answer=reply.answer or reply.text[:200],
                                               error=refused)
                    reply = self._ask(play, state, image, feedback, counts)
                    if reply is not None:
                        action, error = self._parse(play.env, reply, info)
                        counts["llm/invalid_actions"] += error is not None
        fallback = action is None
        if fallback:
            action = self._fallback(info)
            counts["llm/fallback_actions"] += 1
        counts["llm/latency_ms"] += (time.perf_counter() - start) * 1000.0
        counts["llm/tokens"] = counts["llm/prompt_tokens"] + counts["llm/completion_tokens"]
        for counter in (play.step, play.episode, self.totals):
            counter.update(counts)
        self.turns += 1
        played = play.env.action_to_text(action)
        if self.cfg.history:
            play.history.append(Turn(state, played))
        if self.cfg.reasoning_steps:
            last = reply or first
            self._reasoning.append({
                "turn": self.turns, "mode": "train" if play.training else "eval",
                "state": state, "reasoning": last.reasoning if last else "",
                "answer": last.answer if last else None, "refused": refused,
                "action": played, "fallback": fallback,
                **{key.removeprefix("llm/"): value for key, value in counts.items()}})
        return int(action)

    def reply(self, state: str, image: Optional[str] = None) -> dict[str, Any]:
        """One answer to `state` in the current env's answer format, without playing it (the
        pyfunc model): the extracted command (None when the endpoint never answered), the
        reasoning, a format error if any, and the call's counts (STEP_KEYS without "llm/").
        Retries like act(); no history is read or kept."""
        counts: Counter = Counter()
        start = time.perf_counter()
        answer = self._ask(self._new_play(self.env, training=False), state, image, None, counts)
        counts["llm/latency_ms"] += (time.perf_counter() - start) * 1000.0
        counts["llm/tokens"] = counts["llm/prompt_tokens"] + counts["llm/completion_tokens"]
        self.totals.update(counts)
        return {"answer": answer.answer if answer else None,
                "reasoning": answer.reasoning if answer else "",
                "error": (answer.format_error if answer else "the endpoint did not answer"),
                **{key.removeprefix("llm/"): float(counts.get(key, 0)) for key in STEP_KEYS}}

    def observe(self, transition: Transition) -> None:
        if transition.terminated or transition.truncated:
            self._play.history.clear()  # a new episode starts with no past turns

    def update(self, step: int) -> dict[str, float]:
        """The llm/* metrics of the steps since the last call (the loop calls this every step)."""
        counts = self._play.step
        metrics = {key: float(counts.get(key, 0)) for key in STEP_KEYS}
        counts.clear()
        return metrics

    def episode_metrics(self) -> dict[str, float]:
        """llm/ep_* totals since the last call (the MetricsCallback calls this at episode end)."""
        counts = self._play.episode
        metrics = {"llm/ep_" + key.removeprefix("llm/"): float(counts.get(key, 0))
                   for key in STEP_KEYS}
        counts.clear()
        return metrics

    def run_metrics(self) -> dict[str, float]:
        """llm/total_* over the whole run, evaluation included (logged at run end)."""
        return {"llm/total_" + key.removeprefix("llm/"): float(self.totals.get(key, 0))
                for key in STEP_KEYS}

    @property
    def reasoning_log(self) -> list[dict[str, Any]]:
        """The last `reasoning_steps` turns: state, reasoning, answer, action, counts."""
        return list(self._reasoning)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "turns": self.turns,
                "totals": {k: float(v) for k, v in self.totals.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.turns = int(state.get("turns", 0))
        self.totals = Counter(state.get("totals", {}))

    # ---- internals
    def _new_play(self, env: Any, training: bool) -> _Play:
        return _Play(env=env, history=deque(maxlen=max(self.cfg.history, 1)), training=training)

    def _screen(self, env: Any) -> Optional[str]:
        grab = getattr(env, "screen_png_base64", None) if self.cfg.vision else None
        return grab() if grab is not None else None

    def _ask(self, play: _Play, state: str, image: Optional[str], feedback: Optional[str],
             counts: Counter) -> Optional[Reply]:
        """The model's reply, retrying transient failures; None when every attempt failed."""
        retries = self.cfg.max_retries
        for attempt in range(retries + 1):
            counts["llm/calls"] += 1
            try:
                reply = self._request(play, state, image, feedback)
            except Exception as ex:  # noqa: BLE001 - classified just below
                failure = self._failure(ex)
                if failure is None:
                    raise
                if not failure.retryable:
                    raise LLMEndpointError(
                        f"agent: {self.cfg.model} at {self.cfg.base_url or 'the default endpoint'} "
                        f"refused the request ({failure.reason}); check agent.model, "
                        "agent.base_url and the key in agent.api_key_env") from ex
                if attempt == retries:
                    counts["llm/errors"] += 1
                    log.warning("LLM call failed %d times (last: %s); playing a fallback action",
                                retries + 1, failure.reason)
                    return None
                counts["llm/retries"] += 1
                delay = backoff_delay(attempt, self.cfg.backoff_base_s, self.cfg.backoff_max_s,
                                      float(self.rng.random()), failure.retry_after)
                log.info("LLM call failed (%s); retry %d of %d in %.2f s", failure.reason,
                         attempt + 1, retries, delay)
                time.sleep(delay)
                continue
            counts["llm/prompt_tokens"] += reply.prompt_tokens
            counts["llm/completion_tokens"] += reply.completion_tokens
            counts["llm/cost_usd"] += cost_usd(reply.prompt_tokens, reply.completion_tokens,
                                               self.price)
            return reply
        return None

    def _parse(self, env: Any, reply: Reply,
               info: dict[str, Any]) -> tuple[Optional[int], Optional[str]]:
        """(action, None) for a legal answer, else (None, why it was refused)."""
        if reply.format_error is not None:
            return None, reply.format_error
        try:
            action = int(env.parse_action(reply.answer))
        except IllegalActionError as ex:
            return None, str(ex)
        mask = info.get("action_mask")
        if mask is not None and not mask[action]:
            return None, f"{reply.answer!r} is not legal now"
        return action, None

    def _fallback(self, info: dict[str, Any]) -> int:
        legal = legal_actions(info, self.n_actions)
        if len(legal) == 0:
            return 0
        if self.cfg.fallback == "first":
            return int(legal[0])
        return int(self.rng.choice(legal))
