"""agent=dspy: a DSPy program (a Signature in a Predict or ChainOfThought module) over
`dspy.LM`, on any OpenAI-compatible endpoint.

The signature's inputs are the text view, the env's answer format, the last turns and
the feedback on a refused answer (plus the screen as a `dspy.Image` for screen-based envs
when `vision` is on); its output is one command (`action`), with `reasoning` before it
under ChainOfThought. DSPy's cache and its own retries are off (the agent retries, see
base.py), and so is ChatAdapter's JSON fallback (a second hidden call per bad answer).
`save_program(path)` writes the program's state (JSON, no LM, no key); `program_path`
loads such a file, e.g. one tuned by a DSPy optimizer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym

from pipeline.agents.llm.base import Failure, LLMAgent, LLMAgentConfig, Reply
from pipeline.agents.llm.prompts import clean_answer, history_text

MODULES = ("predict", "chain_of_thought")
FORMAT_ERROR = ("the reply did not follow the output format: give the field [[ ## action ## ]] "
                "holding exactly one command, then [[ ## completed ## ]]")


@dataclass
class DSPyAgentConfig(LLMAgentConfig):
    _target_: str = "pipeline.agents.llm.dspy_agent.DSPyAgent"
    name: str = "dspy"
    model: str = "openai/gpt-4o-mini"
    module: str = "chain_of_thought"
    program_path: Optional[str] = None


def build_program(module: str, instructions: str, vision: bool) -> Any:
    """The DSPy program: Predict or ChainOfThought over the game-turn signature."""
    import dspy

    if module not in MODULES:
        raise ValueError(f"agent.module: {module!r} is not allowed (expected one of {MODULES})")
    inputs: dict[str, Any] = {
        "game_state": (str, dspy.InputField(desc="the current state of the game")),
        "answer_format": (str, dspy.InputField(desc="the commands you can answer with")),
        "history": (str, dspy.InputField(desc="your last turns in this episode, oldest first")),
        "feedback": (str, dspy.InputField(desc="why your previous answer was refused, or 'none'")),
    }
    if vision:
        inputs["screen"] = (dspy.Image, dspy.InputField(desc="the game screen now"))
    outputs = {"action": (str, dspy.OutputField(desc="exactly one legal command, nothing else"))}
    signature = dspy.make_signature({**inputs, **outputs}, instructions, "PlayTurn")
    return dspy.Predict(signature) if module == "predict" else dspy.ChainOfThought(signature)


class DSPyAgent(LLMAgent):
    flavor = "dspy"
    config_class = DSPyAgentConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Discrete, *,
                 env: Any = None, seed: int = 0, **config: Any) -> None:
        super().__init__(observation_space, action_space, env=env, seed=seed, **config)
        # DSPy would otherwise download model metadata (prices we do not use) on first call,
        # waiting up to 5 s offline; its bundled copy is enough.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import dspy
        from dspy.utils import exceptions

        self._dspy, self._errors = dspy, exceptions
        cfg = self.cfg
        model = cfg.model if "/" in cfg.model else f"openai/{cfg.model}"
        client: dict[str, Any] = {"api_key": self._api_key or "no-key"}
        if cfg.base_url:
            client["api_base"] = cfg.base_url
        self.lm = dspy.LM(model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                          cache=False, num_retries=0, timeout=cfg.timeout_s, **client)
        self.adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
        self.vision = cfg.vision and callable(getattr(self.env, "screen_png_base64", None))
        self.program = build_program(cfg.module, cfg.system_prompt, self.vision)
        if cfg.program_path:
            path = Path(cfg.program_path)
            if not path.is_file():
                raise ValueError(f"agent.program_path: {path} does not exist "
                                 "(expected a JSON file written by save_program)")
            self.program.load(str(path))

    def save_program(self, path: str | Path) -> Path:
        """The program's state as JSON (signature, instructions, demos; no LM, no key)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.program.save(str(path))
        return path

    def _screen(self, env: Any) -> Optional[str]:
        return super()._screen(env) if self.vision else None

    def _request(self, play: Any, state: str, image: Optional[str],
                 feedback: Optional[str]) -> Reply:
        dspy = self._dspy
        inputs: dict[str, Any] = {
            "game_state": state, "answer_format": play.env.describe_actions(),
            "history": history_text([(t.state, t.action) for t in play.history]
                                    if self.cfg.history else []),
            "feedback": feedback or "none"}
        if self.vision:
            inputs["screen"] = dspy.Image(f"data:image/png;base64,{image}")
        self.lm.history.clear()
        try:
            with dspy.context(lm=self.lm, adapter=self.adapter):
                prediction = self.program(**inputs)
        except self._errors.AdapterParseError as ex:  # nonsense text: an invalid answer
            prompt, completion = self._usage()
            return Reply(answer="", text=str(ex.lm_response)[:2000], prompt_tokens=prompt,
                         completion_tokens=completion, format_error=FORMAT_ERROR)
        prompt, completion = self._usage()
        answer = clean_answer(str(prediction.action))
        reasoning = str(getattr(prediction, "reasoning", "") or "")
        return Reply(answer=answer, reasoning=reasoning, text=answer,
                     prompt_tokens=prompt, completion_tokens=completion)

    def _usage(self) -> tuple[int, int]:
        prompt = completion = 0
        for entry in self.lm.history:
            usage = entry.get("usage") or {}
            prompt += int(usage.get("prompt_tokens") or 0)
            completion += int(usage.get("completion_tokens") or 0)
        self.lm.history.clear()
        return prompt, completion

    def _failure(self, ex: Exception) -> Optional[Failure]:
        errors = self._errors
        if not isinstance(ex, errors.LMError):
            return None
        status = getattr(ex, "status", None)
        reason = f"{type(ex).__name__}" + (f" (HTTP {status})" if status else "")
        fatal = (errors.LMAuthError, errors.LMBillingError, errors.LMInvalidRequestError,
                 errors.LMConfigurationError, errors.LMUnsupportedFeatureError)
        if isinstance(ex, fatal):
            return Failure(False, f"{reason}: {str(ex).strip().splitlines()[0][:200]}")
        if errors.is_retryable_lm_error(ex) or isinstance(ex, errors.LMProviderError):
            return Failure(True, reason, getattr(ex, "retry_after", None))
        return Failure(False, reason)
