"""Wall time of a 2-job sweep with hydra/launcher=joblib (two processes) against the same two
jobs one after the other (Hydra's basic launcher), on 2 cores.

    python benchmarks/sweep_speedup.py [--steps 40000] [--agent dqn]

Each sweep is `python -m pipeline -m seed=0,1 ...` in a subprocess, as a user would type it,
into its own fresh SQLite store (the parent run, two children, the leaderboard: the whole
tracked sweep). Jobs use run.torch_threads=1 (the default), so two jobs fill two cores.
The goal is a ratio >= 1.7: joblib's fixed cost (about 2 s of worker start-up plus each
worker's imports) is paid once while the jobs' work halves, so the jobs must be long
enough; on a machine shared with other work the ratio falls.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sweep(launcher: list[str], steps: int, agent: str) -> tuple[float, float]:
    """Wall seconds for `python -m pipeline -m seed=0,1` with the given launcher overrides,
    and the CPU seconds its processes used."""
    with tempfile.TemporaryDirectory(prefix="sweep-speedup-") as tmp:
        args = [sys.executable, "-m", "pipeline", "-m", *launcher, f"agent={agent}", "seed=0,1",
                f"run.total_steps={steps}", "run.eval_every=0", "run.eval_episodes=5",
                "run.checkpoint_every=0", "run.progress=false", "callbacks=metrics",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_dir={tmp}/art",
                f"hydra.sweep.dir={tmp}/multirun"]
        env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        cpu_before, start = _children_cpu(), time.perf_counter()
        result = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
        elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
    if result.returncode != 0:
        sys.exit(f"sweep failed ({' '.join(launcher) or 'basic launcher'}):\n"
                 f"{result.stderr[-3000:]}")
    return elapsed, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for descendants
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps per job")
    parser.add_argument("--agent", default="dqn", help="agent= for both jobs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # two cores, inherited by every process below
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:2]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sequential, seq_cpu = sweep([], args.steps, args.agent)
    parallel, par_cpu = sweep(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], args.steps,
                              args.agent)
    print(f"2 jobs of {args.steps:,} steps ({args.agent}) on {cores} cores: "
          f"sequential {sequential:.1f} s, joblib {parallel:.1f} s, "
          f"speedup {sequential / parallel:.2f}x (goal >= 1.7x)")
    # Cores the sweep's processes kept busy on average: about 1 and 2 on an idle machine.
    # Less means other work took the CPU and the ratio understates the speedup.
    print(f"cores busy on average: sequential {seq_cpu / sequential:.2f}, "
          f"joblib {par_cpu / parallel:.2f} (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
