"""The MLflow UI launcher behind `python -m pipeline.ui`.

One command starts `mlflow ui` on the project's store (the one `tracking=mlflow` writes,
sqlite:///outputs/mlflow.db from where you launch), waits until it answers and prints its
address; Ctrl-C or SIGTERM stops it. A port already in use is refused before anything
starts (`error: port 5000 is taken (pick another with --port)`, exit 2).

mlflow starts with `--workers 1`, and with the environment that keeps its start-up from
hanging offline (shared stack notes): LITELLM_LOCAL_MODEL_COST_MAP=True,
MLFLOW_DISABLE_TELEMETRY=true, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_STORE = "sqlite:///outputs/mlflow.db"  # conf/tracking/mlflow.yaml's tracking.uri
DEFAULT_PORT = 5000
QUIET_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_DISABLE_TELEMETRY": "true",
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
EXIT_USAGE = 2


def port_taken(host: str, port: int) -> bool:
    """Something already listens on (host, port) (a bind fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port left in TIME_WAIT by a stopped server is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def absolute_store(uri: str) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db (its folder created), so the UI
    reads the store the runs were written to whatever its working directory."""
    from pipeline.tracking.mlflow_tracker import absolute_sqlite_uri

    uri = absolute_sqlite_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.ui",
        description="Start the MLflow UI on the project's store and print its address.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to serve the UI on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--store", default=DEFAULT_STORE,
                        help=f"the tracking store to show (default {DEFAULT_STORE}, "
                             "relative to the current directory)")
    parser.add_argument("--wait", type=float, default=180.0,
                        help="seconds to wait for the UI to answer (default 180)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pipeline.tracking.redact import redact_text

    if not 1 <= args.port <= 65535:
        return _usage(f"--port {args.port} is not a TCP port (expected 1..65535)")
    if port_taken(args.host, args.port):
        return _usage(f"port {args.port} is taken (pick another with --port)")
    store = absolute_store(args.store)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
               "--host", args.host, "--port", str(args.port), "--workers", "1"]
    env = {**QUIET_ENV, **os.environ}
    # Its own session: Ctrl-C reaches only this launcher, which then stops the whole group.
    child = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    print(f"Starting the MLflow UI on {redact_text(store)} at {url} ...", flush=True)
    try:
        if not _wait_until_up(child, url, args.wait):
            code = child.poll()
            if code is None:
                print(f"error: the MLflow UI did not answer at {url} within {args.wait:g} s",
                      file=sys.stderr)
                return 1
            print(f"error: mlflow ui exited with code {code} before answering", file=sys.stderr)
            return code or 1
        print(f"MLflow UI: {url}  (Ctrl-C stops it)", flush=True)
        code = child.wait()
        print(f"error: mlflow ui exited with code {code}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("Stopping the MLflow UI ...", flush=True)
        return 0
    finally:
        _stop(child)
        signal.signal(signal.SIGTERM, previous)


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_until_up(child: subprocess.Popen, url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _stop(child: subprocess.Popen) -> None:
    """SIGTERM to the UI's process group (mlflow runs its server as a child), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)  # the group outlives the child if workers remain
        except ProcessLookupError:
            return
        try:
            child.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue
