"""Per-step overhead of the LLM agents beyond the server's own time, against the local stub.

    python benchmarks/llm_overhead.py [--steps 300] [--latency-ms 0] [--tracing]

The stub (tests/llm_server.py) runs in its own process, so it does not share this
process's interpreter lock. One step is `agent.act(obs, info)` on a Balatro full-run state:
text view, prompt, the HTTP call, answer extraction, parse_action, metrics (the env step
is not timed). The baseline is the same chat request sent with http.client over a
kept-alive connection: the server's own time plus loopback. Overhead = median(step) -
median(baseline), each the best of 3 rounds (other processes on a shared machine only
ever add time). Goals: <= 5 ms (openai), <= 20 ms (dspy). `--tracing` adds the same
runs with MLflow tracing on (a temporary SQLite store): the autolog spans are made in the
step, the traces are written by MLflow's background threads.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENCH_LLM_KEY", "sk-bench-not-a-real-key")

GOALS_MS = {"openai": 5.0, "dspy": 20.0}


def start_server(latency_ms: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.llm_server", "--latency-ms",
                             str(latency_ms)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def baseline_ms(base_url: str, body: dict[str, Any], n: int) -> list[float]:
    """Times of the raw request (http.client, keep-alive, TCP_NODELAY like the clients)."""
    import socket

    url = urlparse(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = json.dumps(body).encode()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", f"{url.path}/chat/completions", payload,
                     {"Content-Type": "application/json", "Authorization": "Bearer x"})
        conn.getresponse().read()
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    return times


def step_ms(agent: Any, env: Any, n: int) -> list[float]:
    obs, info = env.reset(seed=0)
    times = []
    for i in range(n):
        start = time.perf_counter()
        action = agent.act(obs, info)
        times.append((time.perf_counter() - start) * 1000)
        obs, reward, terminated, truncated, info = env.step(action)
        agent.update(i)
        if terminated or truncated:
            obs, info = env.reset(seed=i)
    return times


def measure(name: str, base_url: str, steps: int, tracing: bool) -> tuple[float, float, float]:
    from pipeline.agents.llm import build_agent
    from pipeline.envs.balatro import BalatroEnv

    env = BalatroEnv(mode="run")
    agent = build_agent({"name": name, "model": "stub", "base_url": base_url,
                         "api_key_env": "BENCH_LLM_KEY", "prices": {"stub": [1.0, 2.0]}}, env)
    tracker = None
    if tracing:
        from pipeline.tracking.mlflow_tracker import MLflowTracker

        folder = tempfile.mkdtemp(prefix="llm-bench-")
        tracker = MLflowTracker(uri=f"sqlite:///{folder}/mlflow.db", artifact_dir=f"{folder}/art")
        tracker.start_run("llm_overhead", experiment="llm_overhead")
        tracker.enable_tracing(agent.flavor)
    step_ms(agent, env, 50)  # warm up: imports, connection, caches
    rounds = 3
    step_median = min(statistics.median(step_ms(agent, env, max(steps // rounds, 1)))
                      for _ in range(rounds))
    obs, info = env.reset(seed=0)
    from pipeline.agents.llm.openai_agent import OpenAIAgent

    probe = agent if isinstance(agent, OpenAIAgent) else build_agent(
        {"name": "openai", "model": "stub", "base_url": base_url, "api_key_env": "BENCH_LLM_KEY"},
        env)
    body = {"model": "stub", "temperature": 0.0, "max_tokens": 512,
            "messages": probe._messages(probe._play, env.text_view(), None, None)}
    base_median = min(statistics.median(baseline_ms(base_url, body, max(steps // rounds, 1)))
                      for _ in range(rounds))
    if tracker is not None:
        tracker.end_run()
    return step_median, base_median, step_median - base_median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="server time added to every answer (a model's think time)")
    parser.add_argument("--tracing", action="store_true", help="also measure with MLflow tracing")
    args = parser.parse_args()
    proc, base_url = start_server(args.latency_ms)
    try:
        print(f"stub server {base_url} (own process), {args.steps} steps per agent, "
              f"server latency {args.latency_ms:g} ms; medians in ms")
        print(f"{'agent':<8} {'tracing':<8} {'step':>8} {'baseline':>9} {'overhead':>9} "
              f"{'goal':>6}")
        for tracing in (False, True) if args.tracing else (False,):
            for name in ("openai", "dspy"):
                step, base, overhead = measure(name, base_url, args.steps, tracing)
                goal = "" if tracing else f"<= {GOALS_MS[name]:g}"
                verdict = "" if tracing else ("ok" if overhead <= GOALS_MS[name] else "MISSED")
                print(f"{name:<8} {'on' if tracing else 'off':<8} {step:8.2f} {base:9.2f} "
                      f"{overhead:9.2f} {goal:>6} {verdict}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
