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

    def log_model(self, kind: str, **kwargs: Any) -> Any:
        """kind "pytorch" or "pyfunc": log_pytorch_model / log_pyfunc_model with kwargs."""
        ...

    # ---- models (MLflow 3: `name=`, logged models, registry aliases; no stages)
    def log_pytorch_model(self, model: Any, name: str, *, signature: Any = None,
                          pip_requirements: list[str] | None = None, step: int = 0,
                          tags: dict[str, Any] | None = None) -> dict[str, str] | None:
        """An nn.Module as an mlflow.pytorch model in this run (pickle format, so it loads
        back as the same class). Returns {"model_id", "model_uri", "name"}; None when not
        tracking. pip_requirements None: this package's pinned list (never inferred)."""
        ...

    def log_pyfunc_model(self, name: str, python_model: str | Path, *,
                         artifacts: dict[str, str] | None = None, signature: Any = None,
                         input_example: Any = None, pip_requirements: list[str] | None = None,
                         step: int = 0, tags: dict[str, Any] | None = None
                         ) -> dict[str, str] | None:
        """A pyfunc model from code (a .py file ending in mlflow.models.set_model(...)) with
        its artifacts, in this run. Returns as log_pytorch_model."""
        ...

    def register_model(self, name: str, model_uri: str, *, tags: dict[str, Any] | None = None,
                       aliases: tuple[str, ...] | list[str] = ()) -> str | None:
        """A new version of registered model `name` from `model_uri` (models:/<model_id>),
        tagged, with `aliases` moved to it. Returns the version (None when not tracking)."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point models:/name@alias at `version`."""
        ...

    def get_alias_version(self, name: str, alias: str) -> dict[str, Any] | None:
        """{"version", "run_id", "source", "tags"} of name@alias; None if there is none."""
        ...

    def set_model_version_tags(self, name: str, version: str, tags: dict[str, Any]) -> None: ...

    def run_model_versions(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The registered model versions created from run `run_id` (default: this run):
        [{"name", "version", "aliases", "tags", "source"}]; [] when not tracking."""
        ...

    def load_pytorch_model(self, model_uri: str) -> Any:
        """mlflow.pytorch.load_model(model_uri) from this store, on the CPU."""
        ...

    # ---- the old tracker's calls, kept for its users
    def log_episode_end(self, agent: Any) -> None:
        """The agent's last finished episode (return, length) and epsilon, at agent.steps."""
        ...

    def log_custom_metric(self, name: str, value: float, step: int | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def flush(self) -> None: ...

    def end_run(self, status: str = "FINISHED") -> None: ...
