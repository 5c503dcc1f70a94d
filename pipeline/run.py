"""The run: build the parts from the config, train, evaluate, summarise.

`main(cfg)` is what `python -m pipeline` calls and what tests call with a config composed
by `hydra.compose`; it returns the sweep objective. Read it top to bottom: `build`, then
`train` (the loop), then `evaluate`, then the summary.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
def main(cfg: DictConfig) -> float | None:
    """Train and evaluate one agent on one env; return the objective (run.objective). In a
    sweep job, an objective that is NaN comes back as None (a failed trial)."""
    validate(cfg)
    job = sweep.current_job()  # set when this run is one job of a multirun (a child run)
    if job is not None and (reused := sweep.reuse_finished(cfg, job)) is not None:
        return reused  # hydra.callbacks.sweep.skip_finished: this config FINISHED before
    import torch

    torch.set_num_threads(cfg.run.torch_threads)
    parts = build(cfg)
    try:
        objective = _run(cfg, parts, job)
    finally:
        parts.env.close()
        parts.eval_env.close()
    if job is not None and math.isnan(objective):
        # Optuna refuses a NaN (and Hydra's sweeper then stops the whole search); None is
        # what sweepers take as a failed trial. The run itself FINISHED, objective NaN.
        return None
    return objective


def _run(cfg: DictConfig, parts: Parts, job: Any) -> float:
    """Start (or resume) the tracked run, train, close the run, print the summary."""
    resume = _load_resume(cfg, parts.tracker) if cfg.run.resume else None
    if cfg.run.init_from:   # a trained agent to evaluate (total_steps=0) or train further
        from pipeline.agents.loading import load_policy

        load_policy(parts.agent, str(cfg.run.init_from), parts.tracker, "run.init_from")
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
    if state.stopped == "budget":
        _record_budget_stop(cfg, state, parts.tracker)
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
    over_budget = budget_check(cfg, agent)  # None unless run.max_cost_usd is set
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
            # A guided episode (agent.guide) trains the agent but is not its play: it stays
            # out of the rollout returns (rollout/ep_return_mean*, the best-average model).
            guided = bool(getattr(agent, "last_episode_guided", False))
            summary = EpisodeSummary(state.episode, state.episode_return,
                                     state.episode_length, info, guided)
            if not guided:
                state.returns.append(state.episode_return)
            keep_going = callbacks.on_episode_end(state, summary)
            state.episode += 1
            state.episode_return, state.episode_length = 0.0, 0
            state.obs, state.info = env.reset(seed=episode_seed(cfg.seed, state.episode))
        keep_going = callbacks.on_step(state, transition) and keep_going
        if eval_every and state.step % eval_every == 0 and state.step < total_steps:
            results = evaluate(agent, parts.eval_env, eval_episodes, eval_seed,
                               recorder=_recorder(state), stop=over_budget)
            callbacks.on_eval(state, results)
        if over_budget is not None and over_budget():
            state.stopped, keep_going = "budget", False
            log.warning("Stopping training at step %d: the LLM spend reached run.max_cost_usd "
                        "(%s USD)", state.step, cfg.run.max_cost_usd)
    if eval_episodes:
        episodes: list[dict[str, Any]] = []
        results = evaluate(agent, parts.eval_env, eval_episodes, eval_seed,
                           recorder=_recorder(state), rows=episodes, stop=over_budget)
        if over_budget is not None and len(episodes) < eval_episodes:
            state.stopped = "budget"
            log.warning("The LLM spend reached run.max_cost_usd (%s USD): the final evaluation "
                        "has %d of %d episodes", cfg.run.max_cost_usd, len(episodes),
                        eval_episodes)
        state.eval_episodes = episodes
        log_eval_episodes(state)
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
             recorder: list | None = None, rows: list | None = None,
             stop: Callable[[], bool] | None = None) -> dict[str, float]:
    """Greedy episodes on seeds first_seed .. first_seed+episodes-1 (the same for every run).
    With `recorder`, each episode's dict(seed, actions, rewards, game) is appended to it
    (the env is deterministic under the seed, so this is enough to replay it). With `rows`,
    each episode's summary (episode_row: seed, return, rounds reached, won, final score,
    LLM cost) is appended to it. `stop` (the LLM budget) is asked before each episode and
    after each step: once it says True the evaluation ends, and an episode it cut short is
    left out of the results (its partial play is no result)."""
    bound = getattr(agent, "env", None)
    try:
        return _evaluate(agent, env, episodes, first_seed, rebind=bound is not None,
                         recorder=recorder, rows=rows, stop=stop)
    finally:
        if bound is not None:
            agent.env = bound


def _evaluate(agent: Any, env: Any, episodes: int, first_seed: int, rebind: bool,
              recorder: list | None = None, rows: list | None = None,
              stop: Callable[[], bool] | None = None) -> dict[str, float]:
    returns, lengths, games, costs = [], [], [], []
    for i in range(episodes):
        if stop is not None and stop():
            break
        if rebind:  # agents that read their env read the one being played, from a fresh start
            agent.env = env.unwrapped
        spent = llm_cost_usd(agent)
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
            if not done and stop is not None and stop():
                break
        if not done:  # cut short by the budget
            break
        cost = None if spent is None else llm_cost_usd(agent) - spent
        returns.append(ret)
        lengths.append(length)
        games.append(info.get("game", {}))
        if cost is not None:
            costs.append(cost)
        if recorder is not None:
            recorder.append({"seed": first_seed + i, "actions": actions, "rewards": rewards,
                             "game": dict(info.get("game", {}))})
        if rows is not None:
            rows.append(episode_row(i, first_seed + i, ret, length, info, cost))
    if not returns:
        return {}
    results = {"eval/ep_return": float(np.mean(returns)),
               "eval/ep_return_std": float(np.std(returns)),
               "eval/ep_length": float(np.mean(lengths))}
    for key in games[0] if games else ():
        results[f"eval/{key}"] = float(np.mean([g[key] for g in games]))
    if costs:
        results["eval/cost_usd"] = float(np.mean(costs))
    return results


# The columns of eval/episodes.csv (one row per episode of the final evaluation).
EPISODE_COLUMNS = ("episode", "seed", "return", "length", "rounds", "won", "score", "cost_usd")


def episode_row(index: int, seed: int, ret: float, length: int, info: dict[str, Any],
                cost_usd: float | None) -> dict[str, Any]:
    """One evaluation episode: rounds reached is the game's round counter at the end
    (Balatro: info["round"], 3 per ante) or, for envs without rounds, the episode length;
    won and the final score come from info (info["game"] for the score) where the env
    has them, else None; cost_usd is the LLM spend of the episode (None for agents that
    call no LLM)."""
    game = info.get("game") or {}
    rounds = _number(info.get("round", game.get("round")))
    return {"episode": index, "seed": seed, "return": float(ret), "length": int(length),
            "rounds": float(length) if rounds is None else rounds,
            "won": _number(info.get("won", game.get("won"))),
            "score": _number(info.get("score", game.get("score"))), "cost_usd": cost_usd}


def _number(value: Any) -> float | None:
    """A number (bools count as 0/1) as a float; None for anything else."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    return None


def log_eval_episodes(state: RunState) -> Path | None:
    """Write the final evaluation's episodes to <output dir>/eval/episodes.csv and log it
    under eval/ (None when there were none)."""
    if not state.eval_episodes:
        return None
    folder = Path(state.output_dir) / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "episodes.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EPISODE_COLUMNS)
        writer.writeheader()
        for row in state.eval_episodes:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in EPISODE_COLUMNS})
    state.tracker.log_artifact(path, "eval")
    return path


# ---------------------------------------------------------------- the LLM budget
def llm_cost_usd(agent: Any) -> float | None:
    """What the agent has spent on LLM calls so far (USD, training and evaluation, from its
    llm/total_cost_usd); None for agents that call no LLM."""
    totals = getattr(agent, "run_metrics", None)
    if totals is None:
        return None
    return float(totals().get("llm/total_cost_usd", 0.0))


def budget_check(cfg: DictConfig, agent: Any) -> Callable[[], bool] | None:
    """run.max_cost_usd as a check the loop and the evaluation call after every step: True
    once the agent's LLM spend has reached the limit. None without a limit (or for agents
    that call no LLM, with a warning: there is nothing to limit)."""
    limit = OmegaConf.select(cfg, "run.max_cost_usd")
    if limit is None:
        return None
    if llm_cost_usd(agent) is None:
        log.warning("run.max_cost_usd=%s has no effect: agent %s calls no LLM", limit,
                    cfg.agent.name)
        return None
    limit = float(limit)
    return lambda: llm_cost_usd(agent) >= limit


def _record_budget_stop(cfg: DictConfig, state: RunState, tracker: Any) -> None:
    """A run stopped by run.max_cost_usd says so: tag stopped=budget, metrics
    run/budget_stopped, run/cost_usd and run/eval_episodes_finished."""
    spent = llm_cost_usd(state.agent) or 0.0
    tracker.set_tags({"stopped": "budget"})
    tracker.log_metrics({"run/budget_stopped": 1.0, "run/cost_usd": spent,
                         "run/eval_episodes_finished": float(len(state.eval_episodes))},
                        state.step)
    log.warning("Run stopped by its LLM budget: spent %.4f USD of run.max_cost_usd=%s; "
                "%d of %d evaluation episodes finished", spent, cfg.run.max_cost_usd,
                len(state.eval_episodes), cfg.run.eval_episodes)


# ---------------------------------------------------------------- resume
def _load_resume(cfg: DictConfig, tracker: Any) -> dict[str, Any]:
    from pipeline.callbacks.checkpoint import load_checkpoint_or_run

    target = str(cfg.run.resume)
    payload = load_checkpoint_or_run(target, tracker)
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
    """Hash of the resolved config, without the settings that do not change results and
    without unset (null) settings, so that adding an optional setting later (off by
    default) leaves the hashes of earlier runs as they were."""
    node = _without_nulls(OmegaConf.to_container(cfg, resolve=True))
    node.get("run", {}).pop("resume", None)
    node.get("run", {}).pop("progress", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(node)).encode()).hexdigest()[:12]


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


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


PER_USD = "_per_usd"  # run.objective=eval/<metric>_per_usd: that metric per dollar of LLM spend


def _objective(cfg: DictConfig, results: dict[str, float], state: RunState) -> float:
    """The last evaluation's run.objective; without evaluation, the recent mean return.

    `eval/<metric>_per_usd` (e.g. eval/round_per_usd: mean rounds reached per dollar) is
    the evaluation's mean of eval/<metric> divided by its mean LLM cost per episode
    (eval/cost_usd); NaN, with a warning, when the agent calls no LLM or its calls cost
    nothing (no price for the model in agent.prices). A run stopped by its LLM budget
    before any evaluation episode finished has no objective (NaN: Optuna marks the trial
    failed), not the training return."""
    key = str(cfg.run.objective)
    if key.endswith(PER_USD) and key not in results:
        return _per_usd(key, results)
    if key in results:
        return float(results[key])
    if state.stopped == "budget" and cfg.run.eval_episodes:
        log.warning("run.objective: no evaluation episode finished within run.max_cost_usd; "
                    "the objective is NaN")
        return math.nan
    recent = state.returns[-100:]
    return float(np.mean(recent)) if recent else float("nan")


def _per_usd(key: str, results: dict[str, float]) -> float:
    metric, cost = key.removesuffix(PER_USD), results.get("eval/cost_usd")
    if not results:
        return math.nan  # no evaluation episode: said where the evaluation was cut
    if metric not in results:
        log.warning("run.objective: %s needs %s, which the evaluation does not have "
                    "(expected one of: %s); the objective is NaN", key, metric,
                    ", ".join(sorted(results)))
        return math.nan
    if cost is None or not cost > 0:
        log.warning("run.objective: %s needs an LLM cost per episode, and %s; the "
                    "objective is NaN", key, "this agent calls no LLM" if cost is None else
                    "the calls cost nothing (is the model in agent.prices?)")
        return math.nan
    return float(results[metric]) / float(cost)


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
    if state.stopped == "budget":
        table.add_row("stopped early", f"LLM spend reached run.max_cost_usd={cfg.run.max_cost_usd} "
                      f"USD ({len(state.eval_episodes)} of {cfg.run.eval_episodes} evaluation "
                      "episodes finished)")
    for key, value in tracker.describe().items():
        table.add_row(f"mlflow {key}" if key != "ui" else "open the UI", value)
    table.add_row("outputs", str(state.output_dir))
    Console().print(table)
