"""agent=openai: chat completions through the official openai client, on any
OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, Ollama: set agent.base_url).

The messages: a system message (role, the env's answer format, "end with `Action: ...`"),
then one user message with the last `history` turns (state, played command) and the
current text view, with the screen as an image for screen-based envs when `vision` is on;
a refused answer adds the feedback as one more user message. One client is kept for the
whole run (httpx keep-alive); its own retries are off, the agent retries (base.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import gymnasium as gym

from pipeline.agents.llm.base import Failure, LLMAgent, LLMAgentConfig, MalformedReply, Reply
from pipeline.agents.llm.prompts import history_text, split_reply, system_message

_RETRY_STATUS = (408, 409, 425, 429)


@dataclass
class OpenAIAgentConfig(LLMAgentConfig):
    _target_: str = "pipeline.agents.llm.openai_agent.OpenAIAgent"
    name: str = "openai"
    image_detail: str = "low"


class OpenAIAgent(LLMAgent):
    flavor = "openai"
    config_class = OpenAIAgentConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Discrete, *,
                 env: Any = None, seed: int = 0, **config: Any) -> None:
        super().__init__(observation_space, action_space, env=env, seed=seed, **config)
        import openai

        self._openai = openai
        # "no-key": the client insists on a key; keyless local servers ignore it.
        self.client = openai.OpenAI(api_key=self._api_key or "no-key", base_url=self.cfg.base_url,
                                    timeout=self.cfg.timeout_s, max_retries=0)
        self._format: Optional[str] = None
        self._system: dict[str, str] = {}

    def _messages(self, play: Any, state: str, image: Optional[str],
                  feedback: Optional[str]) -> list[dict[str, Any]]:
        answer_format = play.env.describe_actions()
        if answer_format != self._format:  # built once per env answer format, not per step
            self._format = answer_format
            self._system = {"role": "system",
                            "content": system_message(self.cfg.system_prompt, answer_format)}
        # Past turns go in the same user message as the state: the client validates every
        # message of every request, so two messages instead of 2 * history + 2 save ms per step.
        text = state
        if self.cfg.history and play.history:
            past = history_text([(turn.state, turn.action) for turn in play.history])
            text = f"Your last turns in this episode, oldest first:\n\n{past}\n\nNow:\n{state}"
        messages: list[dict[str, Any]] = [self._system]
        if image is None:
            messages.append({"role": "user", "content": text})
        else:
            messages.append({"role": "user", "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}",
                                                    "detail": self.cfg.image_detail}}]})
        if feedback is not None:
            messages.append({"role": "user", "content": feedback})
        return messages

    def _request(self, play: Any, state: str, image: Optional[str],
                 feedback: Optional[str]) -> Reply:
        response = self.client.chat.completions.create(
            model=self.cfg.model, messages=self._messages(play, state, image, feedback),
            temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens)
        if not getattr(response, "choices", None):
            raise MalformedReply("the endpoint answered without choices")
        message = response.choices[0].message
        text = message.content or ""
        reasoning, answer = split_reply(text)
        extra = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        if isinstance(extra, str) and extra.strip():  # vLLM / OpenRouter reasoning fields
            reasoning = f"{extra.strip()}\n{reasoning}".strip()
        usage = response.usage
        return Reply(answer=answer, reasoning=reasoning, text=text,
                     prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                     completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))

    def _failure(self, ex: Exception) -> Optional[Failure]:
        openai = self._openai
        if isinstance(ex, openai.APIStatusError):
            status = ex.status_code
            reason = f"HTTP {status}"
            if status in _RETRY_STATUS or status >= 500:
                return Failure(True, reason, _retry_after(ex.response.headers))
            return Failure(False, f"{reason}: {_first_line(ex)}")
        if isinstance(ex, openai.APITimeoutError):
            return Failure(True, f"no answer within {self.cfg.timeout_s} s")
        if isinstance(ex, openai.APIConnectionError):
            return Failure(True, "connection failed")
        if isinstance(ex, (json.JSONDecodeError, MalformedReply,
                           openai.APIResponseValidationError)):
            return Failure(True, f"malformed response ({type(ex).__name__})")
        return None


def _retry_after(headers: Any) -> Optional[float]:
    """Seconds from retry-after-ms or Retry-After (a number; HTTP dates are ignored)."""
    for key, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(key) if headers is not None else None
        if value is None:
            continue
        try:
            return float(value) / scale
        except ValueError:
            continue
    return None


def _first_line(ex: Exception) -> str:
    lines = str(ex).strip().splitlines()
    return lines[0][:200] if lines else type(ex).__name__
