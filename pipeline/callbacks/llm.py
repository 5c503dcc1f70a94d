"""What an LLM agent leaves behind: its last reasoning, its run totals, its program, its model.

At run end: `<output_dir>/llm/reasoning.jsonl` (one JSON object per turn: state, reasoning,
answer, refusal, played action, tokens, latency) and, for the DSPy agent, `program.json`,
both logged as artifacts under `llm/`; the llm/total_* metrics (cost, tokens, retries...
over the whole run, evaluation included); and the agent as the pyfunc model `llm_agent`
(pipeline/models/llm_agent.py: text state in, command and reasoning out). Agents without
these methods are skipped, so the callback is harmless in any run.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.callbacks.base import Callback, RunState

log = logging.getLogger(__name__)


class LLMLogCallback(Callback):
    def __init__(self, artifact_path: str = "llm", program: bool = True,
                 log_model: bool = True) -> None:
        self.artifact_path = artifact_path
        self.program = program
        self.log_model = log_model

    def on_run_end(self, state: RunState) -> None:
        agent = state.agent
        records = getattr(agent, "reasoning_log", None)
        if records is None:
            return
        folder = Path(state.output_dir) / "llm"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "reasoning.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        state.tracker.log_artifact(path, self.artifact_path)
        if hasattr(agent, "run_metrics"):
            state.tracker.log_metrics(agent.run_metrics(), state.step)
        program = None
        if self.program and hasattr(agent, "save_program"):
            program = agent.save_program(folder / "program.json")
            state.tracker.log_artifact(program, self.artifact_path)
        if self.log_model and hasattr(agent, "reply"):
            try:
                self._log_model(state, folder, program)
            except Exception as ex:  # noqa: BLE001 - the run's results are kept regardless
                log.warning("LLMLogCallback: logging the llm_agent model failed: %s: %s",
                            type(ex).__name__, str(ex).splitlines()[0] if str(ex) else "")

    def _log_model(self, state: RunState, folder: Path, program: Path | None) -> None:
        """No input example: MLflow would validate it by calling the model, i.e. the LLM."""
        from omegaconf import OmegaConf

        from pipeline.models.llm_agent_spec import (LLM_AGENT_FILE, llm_agent_signature,
                                                    write_agent_config)

        config = write_agent_config(OmegaConf.to_container(state.cfg.agent, resolve=True),
                                    folder / "model")
        artifacts = {"config": str(config)}
        if program is not None:
            artifacts["program"] = str(program)
        state.tracker.log_pyfunc_model("llm_agent", LLM_AGENT_FILE, artifacts=artifacts,
                                       signature=llm_agent_signature(), step=state.step)
