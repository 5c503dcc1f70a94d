"""No secret reaches MLflow, logs, the console or outputs/.

A password planted in the tracking URI (a run and a sweep against a real `mlflow server`)
must not appear anywhere in the server's store, its artifacts, the run folders or what the
command printed. (API keys of LLM agents: tests/agents/test_llm_pipeline.py plants one and
greps the same places.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_pipeline
from tests.tracking.servers import mlflow_server

PASSWORD = "PLANTED-pw-7d3f9a"


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.reliability
@pytest.mark.server
def test_a_password_in_the_tracking_uri_is_never_written(tmp_path):
    with mlflow_server(f"sqlite:///{tmp_path}/server.db", tmp_path / "server-art") as url:
        uri = url.replace("http://", f"http://alice:{PASSWORD}@")
        common = ["agent=random", "tracking=mlflow_server", f"tracking.uri={uri}",
                  "run.progress=false"]
        single = run_pipeline("debug=smoke", *common, cwd=tmp_path, timeout=300)
        assert single.returncode == 0, single.stderr[-3000:]
        sweep = run_pipeline("-m", "debug=smoke", "seed=0,1", *common, cwd=tmp_path,
                             timeout=300)
        assert sweep.returncode == 0, sweep.stderr[-3000:]
    printed = single.stdout + single.stderr + sweep.stdout + sweep.stderr
    assert "alice:***@" in printed  # the summary names the store, redacted
    assert PASSWORD not in printed
    leaks = _files_containing(tmp_path, PASSWORD.encode())
    assert not leaks, leaks
    assert (tmp_path / "server.db").exists() and list((tmp_path / "outputs").rglob("config.yaml"))
