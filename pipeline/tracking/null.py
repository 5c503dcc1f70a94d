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
