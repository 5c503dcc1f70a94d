"""tracking=none: a tracker that does nothing, so tracking overhead can be measured."""
from __future__ import annotations

from pathlib import Path
from typing import Any


class NullTracker:
    run_id: str | None = None
    uri: str | None = None

    def __init__(self, **_: Any) -> None:
        pass

    def start_run(self, name: str | None = None, *, run_id: str | None = None,
                  tags: dict[str, str] | None = None, experiment: str | None = None) -> None:
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def flush(self) -> None:
        pass

    def end_run(self, status: str = "FINISHED") -> None:
        pass

    def describe(self) -> dict[str, str]:
        return {"tracking": "none (nothing was recorded)"}

    # ---- models: nothing is logged or registered, so there is nothing to look up
    def log_model(self, kind: str, **kwargs: Any) -> None:
        return None

    def log_pytorch_model(self, model: Any, name: str, **kwargs: Any) -> None:
        return None

    def log_pyfunc_model(self, name: str, python_model: str | Path, **kwargs: Any) -> None:
        return None

    def register_model(self, name: str, model_uri: str, **kwargs: Any) -> None:
        return None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        pass

    def get_alias_version(self, name: str, alias: str) -> None:
        return None

    def set_model_version_tags(self, name: str, version: str, tags: dict[str, Any]) -> None:
        pass

    def run_model_versions(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return []

    def load_pytorch_model(self, model_uri: str) -> None:
        return None

    # ---- the old tracker's calls
    def log_episode_end(self, agent: Any) -> None:
        pass

    def log_custom_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    # ---- LLM call tracing: nothing is recorded
    def enable_tracing(self, flavor: str) -> None:
        pass
