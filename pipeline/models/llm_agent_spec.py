"""What logging the LLM agent pyfunc (pipeline/models/llm_agent.py) needs, without importing
that file (it ends in `mlflow.models.set_model`): its path, signature and artifacts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

LLM_AGENT_FILE = Path(__file__).resolve().parent / "llm_agent.py"
COUNT_COLUMNS = ("prompt_tokens", "completion_tokens", "tokens", "cost_usd", "latency_ms",
                 "calls", "retries")


def llm_agent_signature() -> Any:
    """Input: state (required), answer_format and screen_base64 (optional); output: the
    answer, reasoning, error and the call's counts."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, "state"),
                       ColSpec(DataType.string, "answer_format", required=False),
                       ColSpec(DataType.string, "screen_base64", required=False)]),
        outputs=Schema([ColSpec(DataType.string, "answer", required=False),
                        ColSpec(DataType.string, "reasoning", required=False),
                        ColSpec(DataType.string, "error", required=False),
                        *[ColSpec(DataType.double, k) for k in COUNT_COLUMNS]]))


def write_agent_config(agent_config: dict[str, Any], folder: Path) -> Path:
    """The agent node as YAML (the `config` artifact): the key's variable name, never a key
    (the agents refuse an `api_key` setting; redact() is a second guard)."""
    from omegaconf import OmegaConf

    from pipeline.tracking.redact import redact

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create({"agent": redact(agent_config)})))
    return path
