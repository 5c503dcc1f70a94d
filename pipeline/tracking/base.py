"""The Tracker protocol. Only tracking/mlflow_tracker.py (and models/) import mlflow."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tracker(Protocol):
    run_id: str | None

    def start_run(self, name: str | None = None, *, run_id: str | None = None,
                  tags: dict[str, str] | None = None) -> str | None: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffered: values are written in batches, call flush() to force."""
        ...

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...

    def log_model(self, kind: str, **kwargs: Any) -> Any: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def flush(self) -> None: ...

    def end_run(self, status: str = "FINISHED") -> None: ...
