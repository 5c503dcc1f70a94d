"""An LLM agent (agent=openai or agent=dspy) as an MLflow pyfunc model (models from code).

Artifacts: `config` (YAML: a run's resolved config, or just its agent node) and, for the
DSPy agent, `program` (its saved program state, llm/program.json). The API key is read
when the model loads, from the environment variable the config names (`api_key_env`);
it is never part of the model. Each input row:

    {"state": the game's text view, "answer_format": the commands allowed (optional),
     "screen_base64": a PNG screen for vision models (optional; OpenAI agent)}

Each output row: `answer` (the command the model chose, not checked against a game),
`reasoning`, `error` (None, a format problem, or why the row failed), and the call's
counts: prompt_tokens, completion_tokens, tokens, cost_usd, latency_ms, calls, retries.
Bad input is answered with `error`, never an exception. To play a game end to end, use
the game-session model (pipeline/models/game_session.py), which builds the same agent.

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/llm_agent")
    model.predict({"state": env.text_view(), "answer_format": env.describe_actions()})
"""
from __future__ import annotations

import threading
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from pipeline.models.llm_agent_spec import COUNT_COLUMNS as COUNTS


class LLMAgentModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from omegaconf import OmegaConf

        from pipeline.agents.llm import build_agent
        from pipeline.agents.llm.base import TextPrompt

        node = OmegaConf.to_container(OmegaConf.load(context.artifacts["config"]), resolve=True)
        config = dict(node.get("agent", node))
        if context.artifacts.get("program"):
            config["program_path"] = context.artifacts["program"]
        self.prompt = TextPrompt()
        self.agent = build_agent(config, self.prompt)
        self.lock = threading.Lock()  # one answer format per call: requests take turns

    # No type hints here: MLflow would read them as the input schema.
    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            rows = model_input.to_dict(orient="records")
        elif isinstance(model_input, dict):
            rows = [model_input]
        else:
            rows = list(model_input)
        return pd.DataFrame([self._answer(row) for row in rows])

    def _answer(self, row: Any) -> dict[str, Any]:
        state = row.get("state") if isinstance(row, dict) else None
        if not isinstance(state, str) or not state.strip():
            return _failed("input: 'state' must be the game's text view (non-empty text)")
        answer_format, screen = row.get("answer_format"), row.get("screen_base64")
        try:
            with self.lock:
                self.prompt.answer_format = answer_format if isinstance(answer_format, str) else ""
                result = self.agent.reply(state, screen if isinstance(screen, str) and screen
                                          else None)
        except Exception as ex:  # noqa: BLE001 - answered as an error row
            return _failed(f"{type(ex).__name__}: {str(ex).strip().splitlines()[0][:300]}")
        return {"answer": result["answer"], "reasoning": result["reasoning"],
                "error": result["error"], **{k: result[k] for k in COUNTS}}


def _failed(message: str) -> dict[str, Any]:
    return {"answer": None, "reasoning": "", "error": message, **{k: 0.0 for k in COUNTS}}


mlflow.models.set_model(LLMAgentModel())
