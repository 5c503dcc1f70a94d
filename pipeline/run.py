"""The run: build the parts from the config, train, evaluate, summarise.

`main(cfg)` is what `python -m pipeline` calls and what tests call with a config composed
by `hydra.compose`; it returns the sweep objective. Read it top to bottom: `build`, then
`train` (the loop), then `evaluate`, then the summary.
"""
from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.agents.base import Transition
from pipeline.callbacks.base import Callback, CallbackList, EpisodeSummary, RunState
from pipeline.config import ConfigError, validate
from pipeline.tracking import sweep
from pipeline.tracking.redact import redact

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Parts:
    env: Any
    eval_env: Any
    agent: Any
    tracker: Any
    callbacks: CallbackList


# ---------------------------------------------------------------- entry point
def main(cfg: DictConfig) -> float:
    """Train and evaluate one agent on one env; return the objective (run.objective)."""
    validate(cfg)
    job = sweep.current_job()  # set when this run is one job of a multirun (a child run)
    if job is not None and (reused := sweep.reuse_finished(cfg, job)) is not None:
        return reused  # hydra.callbacks.sweep.skip_finished: this config FINISHED before
    import torch

    torch.set_num_threads(cfg.run.torch_threads)
    parts = build(cfg)
    try:
        return _run(cfg, parts, job)
    finally:
        parts.env.close()
        parts.eval_env.close()


def _run(cfg: DictConfig, parts: Parts, job: Any) -> float:
    """Start (or resume) the tracked run, train, close the run, print the summary."""
    resume = _load_resume(cfg, parts.tracker) if cfg.run.resume else None
    state = RunState(cfg=cfg, env=parts.env, agent=parts.agent, tracker=parts.tracker,
                     output_dir=_output_dir())
    name = job.run_name if job else cfg.name or f"{cfg.env.name}__{cfg.agent.name}__{cfg.seed}"
    if resume is None:
        parts.tracker.start_run(name, tags={**run_tags(cfg), **(job.tags if job else {})},
                                experiment=job.experiment if job else cfg.env.name)
        parts.tracker.log_params(run_params(cfg))
        parts.tracker.log_artifact(_write_config(cfg, state.output_dir))
    else:
        parts.tracker.start_run(name, run_id=resume["run_id"], experiment=cfg.env.name)
        _restore(state, resume)
    flavor = getattr(parts.agent, "tracing_flavor", None)
    if flavor:  # LLM agents: every call becomes an MLflow trace linked to this run
        parts.tracker.enable_tracing(flavor)
    try:
        results = train(cfg, parts, state)
    except BaseException as ex:
        parts.tracker.end_run("KILLED" if isinstance(ex, KeyboardInterrupt) else "FAILED")
        raise
    objective = _objective(cfg, results, state)
    parts.tracker.log_metrics({sweep.OBJECTIVE_METRIC: objective}, state.step)
    parts.tracker.end_run("FINISHED")
    print_summary(cfg, state, results, parts.tracker)
    return objective


def build(cfg: DictConfig) -> Parts:
    """Instantiate env, eval env, agent, tracker and callbacks from their config groups."""
    import pipeline.envs  # noqa: F401 - registers the envs with gymnasium

    env = instantiate_component(cfg.env, "env")
    eval_env = instantiate_component(cfg.env, "env")
    agent = instantiate_component(cfg.agent, "agent", observation_space=env.observation_space,
                         action_space=env.action_space, env=env.unwrapped, seed=cfg.seed)
    tracker = instantiate_component(cfg.tracking, "tracking")
    callbacks: list[Callback] = [instantiate_component(c, f"callbacks.{k}")
                                 for k, c in (cfg.callbacks or {}).items()]
    return Parts(env, eval_env, agent, tracker, CallbackList(callbacks))


def instantiate_component(node: Any, where: str, **kwargs: Any) -> Any:
    """hydra.utils.instantiate of one config group node (env, agent, tracking, a callback)
    without its `name` label, with a one-line error on bad keys. Everything that rebuilds
    an env or agent from a run's config (replay, pyfunc models) goes through here."""
    from hydra.utils import instantiate

    if not isinstance(node, DictConfig):
        node = OmegaConf.create(node)
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:  # a node of the composed config gives full paths (env.rom_path)
        key = missing[0] if missing[0].startswith(f"{where}.") else f"{where}.{missing[0]}"
        raise ConfigError(f"{key}: required but not set (add {key}=<value> to the command line)")
    conf = OmegaConf.to_container(node, resolve=True)
    conf.pop("name", None)
    log.info("Instantiating %s <%s>", where, conf.get("_target_"))
    try:
        return instantiate(conf, **kwargs, _convert_="all")
    except Exception as ex:
        cause = ex.__cause__ or ex
        if isinstance(cause, ValueError):  # the component's own one-line validation message
            raise ConfigError(str(cause).splitlines()[0]) from cause
        if isinstance(cause, TypeError):  # e.g. an unexpected keyword in a callback config
            raise ConfigError(f"{where}: {str(cause).splitlines()[0]}") from cause
        raise


# ---------------------------------------------------------------- the loop
def train(cfg: DictConfig, parts: Parts, state: RunState) -> dict[str, float]:
    env, agent, callbacks = parts.env, parts.agent, parts.callbacks
    # Plain ints: reading a DictConfig in the hot loop costs more than the env step.
    total_steps, eval_every = int(cfg.run.total_steps), int(cfg.run.eval_every)
    eval_episodes, eval_seed = int(cfg.run.eval_episodes), int(cfg.run.eval_seed)
    if state.obs is None:
        state.obs, state.info = env.reset(seed=episode_seed(cfg.seed, state.episode))
    n_actions = int(env.action_space.n)
    state.start_time, state.start_step = time.perf_counter(), state.step
    callbacks.on_run_start(state)
    results: dict[str, float] = {}
    keep_going = True
    while keep_going and state.step < total_steps:
        action = agent.act(state.obs, state.info, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        state.step += 1
        mask = info.get("action_mask")
        transition = Transition(state.obs, action, float(reward), next_obs, terminated,
                                truncated, mask if mask is not None else np.ones(n_actions, bool),
                                info)
        agent.observe(transition)
        metrics = agent.update(state.step)
        if metrics:
            callbacks.on_update(state, metrics)
        state.episode_return += float(reward)
        state.episode_length += 1
        state.obs, state.info = next_obs, info
        if terminated or truncated:
            summary = EpisodeSummary(state.episode, state.episode_return,
                                     state.episode_length, info)
            state.returns.append(state.episode_return)
            keep_going = callbacks.on_episode_end(state, summary)
            state.episode += 1
            state.episode_return, state.episode_length = 0.0, 0
            state.obs, state.info = env.reset(seed=episode_seed(cfg.seed, state.episode))
        keep_going = callbacks.on_step(state, transition) and keep_going
        if eval_every and state.step % eval_every == 0 and state.step < total_steps:
            results = evaluate(agent, parts.eval_env, eval_episodes, eval_seed,
                               recorder=_recorder(state))
            callbacks.on_eval(state, results)
    if eval_episodes:
        results = evaluate(agent, parts.eval_env, eval_episodes, eval_seed,
                           recorder=_recorder(state))
        callbacks.on_eval(state, results)
    callbacks.on_run_end(state)
    return results


def episode_seed(seed: int, episode: int) -> int:
    """Training episode k's env seed: a hash of (seed, k) that is stable across processes."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def _recorder(state: RunState) -> list | None:
    """The list a callback put in state.extras["eval_recorder"] to get the episodes of each
    evaluation (emptied first, so it holds the latest one); None when no callback asked."""
    recorder = state.extras.get("eval_recorder")
    if recorder is not None:
        recorder.clear()
    return recorder


def evaluate(agent: Any, env: Any, episodes: int, first_seed: int,
             recorder: list | None = None) -> dict[str, float]:
    """Greedy episodes on seeds first_seed .. first_seed+episodes-1 (the same for every run).
    With `recorder`, each episode's dict(seed, actions, rewards, game) is appended to it
    (the env is deterministic under the seed, so this is enough to replay it)."""
    bound = getattr(agent, "env", None)
    try:
        return _evaluate(agent, env, episodes, first_seed, rebind=bound is not None,
                         recorder=recorder)
    finally:
        if bound is not None:
            agent.env = bound


def _evaluate(agent: Any, env: Any, episodes: int, first_seed: int,
              rebind: bool, recorder: list | None = None) -> dict[str, float]:
    returns, lengths, games = [], [], []
    for i in range(episodes):
        if rebind:  # agents that read their env read the one being played, from a fresh start
            agent.env = env.unwrapped
        obs, info = env.reset(seed=first_seed + i)
        ret, length, done = 0.0, 0, False
        actions, rewards = [], []
        while not done:
            action = agent.act(obs, info, explore=False)
            obs, reward, terminated, truncated, info = env.step(action)
            ret += float(reward)
            length += 1
            done = terminated or truncated
            if recorder is not None:
                actions.append(int(action))
                rewards.append(float(reward))
        returns.append(ret)
        lengths.append(length)
        games.append(info.get("game", {}))
        if recorder is not None:
            recorder.append({"seed": first_seed + i, "actions": actions, "rewards": rewards,
                             "game": dict(info.get("game", {}))})
    results = {"eval/ep_return": float(np.mean(returns)),
               "eval/ep_return_std": float(np.std(returns)),
               "eval/ep_length": float(np.mean(lengths))}
    for key in games[0] if games else ():
        results[f"eval/{key}"] = float(np.mean([g[key] for g in games]))
    return results


# ---------------------------------------------------------------- resume
def _load_resume(cfg: DictConfig, tracker: Any) -> dict[str, Any]:
    from pipeline.callbacks.checkpoint import LATEST, load_checkpoint

    target = str(cfg.run.resume)
    path = Path(target)
    if not path.exists() and "/" not in target and hasattr(tracker, "download_artifact"):
        path = tracker.download_artifact(target, f"checkpoints/{LATEST}")
    payload = load_checkpoint(path)
    if payload.get("run_id") is None:
        raise ValueError(f"run.resume: {target} was written without tracking; "
                         "nothing to continue in the store")
    return payload


def _restore(state: RunState, payload: dict[str, Any]) -> None:
    state.agent.load_state_dict(payload["agent"])
    env = state.env.unwrapped
    if payload["env"] is not None and hasattr(env, "load_state_dict"):
        env.load_state_dict(payload["env"])
        state.obs = payload["obs"].numpy()
        mask = payload["action_mask"]
        state.info = {} if mask is None else {"action_mask": mask.numpy()}
        state.episode_return = payload["episode_return"]
        state.episode_length = payload["episode_length"]
    state.step, state.episode = payload["step"], payload["episode"]
    state.returns = list(payload["returns"])
    log.info("Resumed run %s at step %d (episode %d)", payload["run_id"], state.step,
             state.episode)


# ---------------------------------------------------------------- tracking helpers
def _output_dir() -> Path:
    """Hydra's run dir under `python -m pipeline`; a fresh dir under outputs/ otherwise."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        path = Path(HydraConfig.get().runtime.output_dir)
    else:
        path = Path("outputs/runs") / time.strftime("%Y-%m-%d/%H-%M-%S")
        path = path.with_name(f"{path.name}_{time.time_ns() % 1_000_000:06d}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_params(cfg: DictConfig) -> dict[str, Any]:
    """Env, agent and run settings, flattened (agent.lr, env.mode, ...), plus the seed."""
    flat: dict[str, Any] = {"seed": cfg.seed}
    for group in ("env", "agent", "run"):
        node = OmegaConf.to_container(cfg[group], resolve=True)
        for key, value in node.items():
            if key != "_target_":
                flat[f"{group}.{key}"] = value
    return redact(flat)


def run_tags(cfg: DictConfig) -> dict[str, str]:
    return {"env": cfg.env.name, "agent": cfg.agent.name, "seed": str(cfg.seed),
            "git_commit": _git_commit(), "config_hash": config_hash(cfg)}


def config_hash(cfg: DictConfig) -> str:
    """Hash of the resolved config, without the settings that do not change results."""
    node = OmegaConf.to_container(cfg, resolve=True)
    node.get("run", {}).pop("resume", None)
    node.get("run", {}).pop("progress", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(node)).encode()).hexdigest()[:12]


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _write_config(cfg: DictConfig, output_dir: Path) -> Path:
    path = output_dir / "config.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(redact(
        OmegaConf.to_container(cfg, resolve=True)))))
    return path


def _objective(cfg: DictConfig, results: dict[str, float], state: RunState) -> float:
    """The last evaluation's run.objective; without evaluation, the recent mean return."""
    if cfg.run.objective in results:
        return float(results[cfg.run.objective])
    recent = state.returns[-100:]
    return float(np.mean(recent)) if recent else float("nan")


# ---------------------------------------------------------------- summary
def print_summary(cfg: DictConfig, state: RunState, results: dict[str, float],
                  tracker: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    elapsed = time.perf_counter() - state.start_time
    recent = state.returns[-100:]
    table = Table(title=f"{cfg.env.name} / {cfg.agent.name} / seed {cfg.seed}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", f"{state.step:,}")
    table.add_row("episodes", f"{state.episode:,}")
    table.add_row("wall time", f"{elapsed:.1f} s ({(state.step - state.start_step) / max(elapsed, 1e-9):,.0f} steps/s)")
    if recent:
        table.add_row("mean return (last 100 episodes)", f"{np.mean(recent):.3f}")
        table.add_row("best return", f"{max(state.returns):.3f}")
    if "eval/ep_return" in results:
        table.add_row(f"eval return ({cfg.run.eval_episodes} greedy episodes)",
                      f"{results['eval/ep_return']:.3f} +- {results['eval/ep_return_std']:.3f}")
        for key, value in results.items():
            if key not in ("eval/ep_return", "eval/ep_return_std", "eval/ep_length"):
                table.add_row(key, f"{value:.3f}")
    for key, value in tracker.describe().items():
        table.add_row(f"mlflow {key}" if key != "ui" else "open the UI", value)
    table.add_row("outputs", str(state.output_dir))
    Console().print(table)
