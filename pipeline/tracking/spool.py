"""A local spool for what could not reach the tracking server, and its upload command.

When the MLflow server is gone at the end of a run, the tracker writes everything it
still holds (metric points, artifacts, the run's final status) under
`outputs/spool/<run id>/` instead of losing it. Upload it later with

    python -m pipeline.tracking.spool outputs/spool/<run id> [--uri http://host:5000]

(the default URI is the one the run used, or MLFLOW_TRACKING_URI when given).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable

from pipeline.tracking.redact import redact_text

METRICS = "metrics.jsonl"
ARTIFACTS = "artifacts.jsonl"
RUN = "run.json"


def write_spool(root: Path, *, uri: str, run_id: str, status: str,
                metrics: Iterable[Any], artifacts: Iterable[tuple[str, str | None]]) -> Path:
    """Save metric points and artifact files (copied) for a later upload; returns the folder."""
    folder = Path(root) / run_id
    (folder / "files").mkdir(parents=True, exist_ok=True)
    with open(folder / METRICS, "a") as f:
        for m in metrics:
            f.write(json.dumps({"key": m.key, "value": m.value, "timestamp": m.timestamp,
                                "step": m.step}) + "\n")
    with open(folder / ARTIFACTS, "a") as f:
        for i, (path, artifact_path) in enumerate(artifacts):
            src = Path(path)
            if not src.exists():
                continue
            dest = folder / "files" / f"{len(list((folder / 'files').iterdir())):04d}_{i}" / src.name
            dest.parent.mkdir(parents=True)
            shutil.copy2(src, dest)
            f.write(json.dumps({"file": str(dest.relative_to(folder)),
                                "artifact_path": artifact_path}) + "\n")
    (folder / RUN).write_text(json.dumps({"uri": redact_text(uri), "run_id": run_id,
                                          "status": status}))
    return folder


def upload(folder: Path, uri: str | None = None) -> dict[str, int]:
    """Replay a spool into its run (metrics in batches, artifacts, final status)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    folder = Path(folder)
    meta = json.loads((folder / RUN).read_text())
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or meta["uri"]
    if "***" in uri:
        raise SystemExit("error: --uri: the spooled URI had a password (redacted); pass --uri")
    client = MlflowClient(tracking_uri=uri)
    run_id = meta["run_id"]
    points = []
    if (folder / METRICS).exists():
        for line in (folder / METRICS).read_text().splitlines():
            d = json.loads(line)
            points.append(Metric(d["key"], d["value"], d["timestamp"], d["step"]))
    for i in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[i:i + 1000], synchronous=True)
    files = 0
    if (folder / ARTIFACTS).exists():
        for line in (folder / ARTIFACTS).read_text().splitlines():
            d = json.loads(line)
            client.log_artifact(run_id, str(folder / d["file"]), d["artifact_path"])
            files += 1
    client.set_terminated(run_id, status=meta["status"])
    shutil.rmtree(folder)
    return {"metrics": len(points), "artifacts": files}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tracking.spool",
                                     description="Upload a spooled run to MLflow.")
    parser.add_argument("folder", type=Path, help="outputs/spool/<run id>")
    parser.add_argument("--uri", default=None, help="tracking server (default: the run's)")
    args = parser.parse_args(argv)
    if not (args.folder / RUN).exists():
        sys.stderr.write(f"error: folder: {args.folder} is not a spool "
                         f"(expected {RUN} inside)\n")
        sys.exit(2)
    counts = upload(args.folder, args.uri)
    print(f"uploaded {counts['metrics']} metric points and {counts['artifacts']} artifacts")


if __name__ == "__main__":
    main()
