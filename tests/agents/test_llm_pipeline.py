"""`agent=openai` and `agent=dspy` through the whole pipeline against the local stub server:
a Balatro blind and a generated-ROM Game Boy episode, with faults injected; the llm/*
metrics, the reasoning artifact and one MLflow trace per LLM call land in the run, and the
API key appears nowhere in the store, outputs/ or the console."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import roms
from tests.conftest import run_pipeline
from tests.llm_server import LLMStubServer

KEY = "sk-test-DO-NOT-LEAK-1234567890abcdef"
STEP_METRICS = {"llm/prompt_tokens", "llm/completion_tokens", "llm/cost_usd", "llm/latency_ms",
                "llm/retries", "llm/invalid_actions"}
EPISODE_METRICS = {"llm/ep_prompt_tokens", "llm/ep_cost_usd", "llm/ep_invalid_actions"}


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> Path:
    """An empty MLflow store, created once: each test copies it (schema migrations cost
    several seconds per new SQLite store)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(migrated_db, tmp_path) -> dict[str, str]:
    """A fresh store for this test (a copy of the migrated empty one) and its overrides."""
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return {"uri": uri, "overrides": [f"tracking.uri={uri}",
                                      f"tracking.artifact_dir={tmp_path}/mlartifacts"]}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    with LLMStubServer(hang_s=1.0, required_key=KEY) as stub:
        yield stub


def agent_overrides(server: LLMStubServer) -> list[str]:
    return [f"agent.base_url={server.base_url}", "agent.model=stub",
            "agent.api_key_env=LLM_TEST_KEY", "agent.timeout_s=0.5", "agent.backoff_base_s=0.01",
            "agent.backoff_max_s=0.05", "+agent.prices.stub=[1.0,2.0]"]


def assert_no_key_anywhere(*roots: Path, texts: tuple[str, ...] = ()) -> None:
    needle = KEY.encode()
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), f"the API key leaked into {path}"
                checked += 1
    assert checked > 3
    for text in texts:
        assert KEY not in text


def finished_run(uri: str, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    return client, run


def load_logged_model(client, run, name: str):
    """A model logged in `run`, loaded from its artifact folder (no global tracking URI)."""
    import mlflow

    [logged] = [m for m in client.search_logged_models([run.info.experiment_id])
                if m.name == name and m.source_run_id == run.info.run_id]
    return mlflow.pyfunc.load_model(logged.artifact_location)


def assert_traces(client, run, calls: float) -> None:
    traces = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id,
                                  max_results=500)
    assert len(traces) == calls, "every LLM call is one trace linked to the run"
    assert all(t.info.request_metadata.get("mlflow.sourceRun") == run.info.run_id for t in traces)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["openai", "dspy"])
def test_balatro_run_with_faults_finishes_and_counts_them(agent, server, compose_cfg, store,
                                                          tmp_path, monkeypatch, capsys):
    import os

    import mlflow

    from pipeline import run as pipeline_run
    from pipeline.callbacks.checkpoint import load_checkpoint

    monkeypatch.chdir(tmp_path)  # outputs/ goes under tmp_path
    uri_before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    server.inject("429", "500", "hang", "malformed", "nonsense", "nonsense", "nonsense")
    cfg = compose_cfg(f"agent={agent}", "env=balatro", "env.mode=blind", *store["overrides"],
                      *agent_overrides(server), "callbacks=[metrics,checkpoint]",
                      "run.total_steps=12", "run.eval_every=0", "run.eval_episodes=1",
                      "run.log_every=4", "run.progress=false", "agent.max_retries=4")
    assert set(cfg.callbacks) == {"metrics", "checkpoint", "llm"}
    pipeline_run.main(cfg)

    client, run = finished_run(store["uri"], "balatro")
    metrics = run.data.metrics
    assert STEP_METRICS | EPISODE_METRICS <= set(metrics), sorted(metrics)
    assert metrics["llm/total_retries"] == 4  # 429, 500, hang, malformed
    assert metrics["llm/total_invalid_actions"] == 3 and metrics["llm/total_fallback_actions"] == 1
    assert metrics["llm/total_errors"] == 0 and metrics["llm/total_cost_usd"] > 0
    assert run.data.params["agent.api_key_env"] == "LLM_TEST_KEY"
    assert run.data.params["agent.max_tokens"] == "512"  # a token count, not a secret
    assert_traces(client, run, metrics["llm/total_calls"])
    local = client.download_artifacts(run.info.run_id, "llm", str(tmp_path / "download"))
    lines = [json.loads(x) for x in Path(local, "reasoning.jsonl").read_text().splitlines()]
    assert lines[0]["fallback"] and lines[0]["retries"] == 4 and lines[-1]["mode"] == "eval"
    assert (Path(local) / "program.json").exists() == (agent == "dspy")
    # the tracker ended the fluent run it used for traces and gave the global URI back
    assert mlflow.active_run() is None
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == uri_before
    [checkpoint] = (tmp_path / "outputs").rglob("latest.pt")
    assert load_checkpoint(checkpoint)["agent"]["turns"] == len(lines)  # resumable state
    # the agent as a pyfunc model: text state in, command out
    model = load_logged_model(client, run, "llm_agent")
    state = lines[1]["state"]
    answer = model.predict({"state": state, "answer_format": "play 1 3 5 | discard 2"})
    assert answer.loc[0, "answer"] == "play 1 2 3 4 5" and answer.loc[0, "error"] is None
    assert model.predict({"state": ""}).loc[0, "error"].startswith("input: 'state'")
    out = capsys.readouterr()
    assert_no_key_anywhere(tmp_path, texts=(out.out, out.err))


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["openai", "dspy"])
def test_game_boy_episode_through_the_pipeline(agent, server, compose_cfg, store, tmp_path,
                                               monkeypatch):
    from pipeline import run as pipeline_run

    monkeypatch.chdir(tmp_path)
    rom = roms.build_rom(tmp_path / "homebrew.gb")
    server.inject("429", "nonsense")
    cfg = compose_cfg(f"agent={agent}", "env=gameboy", f"env.rom_path={rom}", "env.max_steps=4",
                      *store["overrides"], *agent_overrides(server), "callbacks=[metrics]",
                      "run.total_steps=4", "run.eval_every=0", "run.eval_episodes=1",
                      "run.log_every=2", "run.progress=false")
    pipeline_run.main(cfg)

    client, run = finished_run(store["uri"], "gameboy")
    metrics = run.data.metrics
    assert STEP_METRICS | EPISODE_METRICS <= set(metrics)
    assert metrics["llm/total_retries"] == 1 and metrics["llm/total_invalid_actions"] == 1
    assert metrics["llm/total_fallback_actions"] == 0
    assert server.stats["images"] == 8  # 4 training + 4 evaluation steps, each with the screen
    assert_traces(client, run, metrics["llm/total_calls"])
    assert_no_key_anywhere(tmp_path)


@pytest.mark.slow
def test_cli_run_with_default_callbacks_keeps_the_key_out(server, store, tmp_path):
    """`python -m pipeline env=balatro agent=openai ...` as a user types it."""
    uri = store["uri"]
    result = run_pipeline(
        "env=balatro", "agent=openai", "env.mode=blind", *agent_overrides(server),
        *store["overrides"], "run.total_steps=6", "run.eval_every=0", "run.eval_episodes=1",
        "run.progress=false",
        "callbacks.best_model.champion=false",
        cwd=tmp_path, env={"LLM_TEST_KEY": KEY}, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = finished_run(uri, "balatro")
    assert run.data.metrics["llm/total_calls"] >= 6
    assert_traces(client, run, run.data.metrics["llm/total_calls"])
    logs = list((tmp_path / "outputs").rglob("pipeline.log"))
    assert logs and list((tmp_path / "outputs").rglob("llm/reasoning.jsonl"))
    # the game-session model of the run plays through the same agent (and the stub)
    session = load_logged_model(client, run, "game_session")
    started = session.predict({"action": "start_game", "headless": True})[0]
    stepped = session.predict({"action": "step", "headless": True})[0]
    assert started["status"] == "success", started["error"]
    assert stepped["status"] == "success" and stepped["ai_response"].startswith("play")
    assert_no_key_anywhere(tmp_path, texts=(result.stdout, result.stderr))
