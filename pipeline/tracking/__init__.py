"""Trackers: where a run's params, metrics, artifacts and models go.

`pipeline.tracking.MLflowTracker` is also the old tracker's import path: `start_run(name)`,
`log_episode_end(agent)`, `log_custom_metric(name, value, step)`,
`log_artifact(path, artifact_path)` and `end_run()` keep working.
"""
from pipeline.tracking.mlflow_tracker import MLflowTracker
from pipeline.tracking.null import NullTracker

__all__ = ["MLflowTracker", "NullTracker"]
