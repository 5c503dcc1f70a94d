"""A run report at run end: a reward-curve PNG and report.md, logged under report/.

The curve shows the training episode returns (raw and a moving average) and the mean
evaluation return against env steps, from what this callback saw during the run (after a
resume, only this process's part), with the random and heuristic baselines as horizontal
lines where they are known. report.md summarises the config, the final metrics, the
baselines, the registered models this run created (with their aliases and models:/ URIs)
and the artifact paths of the evaluation episodes, the replays and the media. Put it after
best_model, replay and media in the callbacks list: it reads what they left (the registry
after the champion decision, the replay files). matplotlib is imported only at run end.

Baselines (`baselines: auto`): on the Balatro simulator the random and heuristic agents
play the run's final evaluation (the same `run.eval_episodes` seeds from `run.eval_seed`,
through `pipeline.run.evaluate`, on a fresh env from the run's env config), so their
numbers compare with the run's own evaluation. Results are cached in memory and on disk
(`cache_dir`) per env config, seeds and the code that produced them. Other envs get only
the values given in `known` (random play on a Game Boy env would take minutes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from pipeline.callbacks.base import Callback, EpisodeSummary, RunState

log = logging.getLogger(__name__)

BASELINE_AGENTS = {"random": "pipeline.agents.baselines.RandomAgent",
                   "heuristic": "pipeline.agents.baselines.HeuristicAgent"}
BASELINE_SEED = 0  # the baseline agents' own seed (the random agent's RNG)
_COLORS = {"random": "tab:red", "heuristic": "tab:green"}
_MEMORY: dict[str, dict[str, Any]] = {}  # cache key -> Baseline fields, for this process


@dataclass
class Baseline:
    """One baseline agent's evaluation (means over its episodes), or a given value."""

    name: str
    ep_return: float  # mean evaluation return
    source: str  # computed | cached | given
    episodes: int = 0  # evaluation episodes (0 for a given value)
    first_seed: int = 0
    won: float = math.nan  # win / clear rate
    rounds: float = math.nan  # mean rounds reached
    score: float = math.nan  # mean final score
    seconds: float = 0.0  # time it took to compute (0 when cached or given)


class ReportCallback(Callback):
    def __init__(self, window: int = 20, artifact_path: str = "report", baselines: str = "auto",
                 known: dict[str, dict[str, float]] | None = None, max_s: float = 10.0,
                 cache_dir: str | None = "outputs/cache/baselines") -> None:
        where = "callbacks.report"
        if int(window) < 1:
            raise ValueError(f"{where}.window: {window} must be at least 1")
        if baselines not in ("auto", "none"):
            raise ValueError(f"{where}.baselines: {baselines!r} is not allowed "
                             "(expected auto or none)")
        if not float(max_s) > 0:
            raise ValueError(f"{where}.max_s: {max_s} must be > 0 (seconds)")
        for env_name, values in (known or {}).items():
            if not isinstance(values, dict) or not all(
                    isinstance(v, (int, float)) for v in values.values()):
                raise ValueError(f"{where}.known.{env_name}: {values!r} is not a mapping of "
                                 "baseline name to mean evaluation return (e.g. {random: 0.3})")
        self.window = int(window)
        self.artifact_path = artifact_path
        self.baselines = baselines
        self.known = {k: dict(v) for k, v in (known or {}).items()}
        self.max_s = float(max_s)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.train: list[tuple[int, float]] = []  # (step at episode end, return)
        self.evals: list[tuple[int, dict[str, float]]] = []  # (step, results)
        self.baseline_results: list[Baseline] = []
        self.skipped: list[str] = []  # baselines left out, with the reason (for report.md)

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        self.train.append((state.step, float(episode.ret)))
        return True

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        self.evals.append((state.step, dict(results)))

    def on_run_end(self, state: RunState) -> None:
        folder = Path(state.output_dir) / self.artifact_path
        folder.mkdir(parents=True, exist_ok=True)
        self.baseline_results = self._baselines(state)
        paths = [self._plot(folder / "reward_curve.png"), self._markdown(state, folder / "report.md")]
        if state.tracker is not None:
            for path in paths:
                state.tracker.log_artifact(path, self.artifact_path)

    # ------------------------------------------------------------------ baselines

    def _baselines(self, state: RunState) -> list[Baseline]:
        """Computed baselines (Balatro simulator) and given ones (`known`); a failure to
        compute one is logged and noted, never the end of the run."""
        self.skipped = []
        if self.baselines == "none":
            return []
        cfg = state.cfg
        out: list[Baseline] = []
        episodes, first_seed = int(cfg.run.eval_episodes), int(cfg.run.eval_seed)
        if episodes > 0 and _is_balatro_simulator(state.env):
            for name in BASELINE_AGENTS:
                try:
                    found = compute_baseline(cfg.env, name, episodes, first_seed,
                                             max_s=self.max_s, cache_dir=self.cache_dir)
                except Exception as ex:  # noqa: BLE001 - the report goes on without it
                    log.warning("ReportCallback: the %s baseline failed: %s", name, ex)
                    first_line = str(ex).splitlines()[0] if str(ex) else ""
                    self.skipped.append(f"{name}: failed ({type(ex).__name__}: {first_line})")
                    continue
                if found is None:
                    self.skipped.append(f"{name}: would take longer than callbacks.report.max_s="
                                        f"{self.max_s:g} s")
                else:
                    out.append(found)
        for name, value in self.known.get(str(cfg.env.name), {}).items():
            out = [b for b in out if b.name != name]
            out.append(Baseline(str(name), float(value), "given"))
        return out

    # ------------------------------------------------------------------ the curve

    def _plot(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        if self.train:
            steps = np.array([s for s, _ in self.train])
            rets = np.array([r for _, r in self.train])
            ax.plot(steps, rets, color="tab:blue", alpha=0.25, lw=0.8, label="training episode return")
            w = min(self.window, len(rets))
            avg = np.convolve(rets, np.ones(w) / w, mode="valid")
            ax.plot(steps[w - 1:], avg, color="tab:blue", lw=2,
                    label=f"training return (moving average, {w} episodes)")
        evals = [(s, r["eval/ep_return"]) for s, r in self.evals if "eval/ep_return" in r]
        if evals:
            ax.plot([s for s, _ in evals], [v for _, v in evals], "o-", color="tab:orange",
                    lw=2, label="evaluation return (mean)")
        for b in self.baseline_results:
            how = f"{b.episodes} evaluation episodes" if b.episodes else "given"
            ax.axhline(b.ep_return, ls="--", lw=1.5, color=_COLORS.get(b.name, "tab:gray"),
                       label=f"{b.name} baseline ({how}): {b.ep_return:.3g}")
        if not self.train and not evals:
            ax.text(0.5, 0.5, "no finished episodes", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_xlabel("env step")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
        if self.train or evals or self.baseline_results:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path

    # ------------------------------------------------------------------ report.md

    def _markdown(self, state: RunState, path: Path) -> Path:
        cfg = state.cfg
        rets = [r for _, r in self.train]
        lines = [f"# Run report: {cfg.env.name} / {cfg.agent.name} / seed {cfg.seed}", ""]
        run_id = getattr(state.tracker, "run_id", None)
        if run_id:
            lines += [f"MLflow run: `{run_id}`", ""]
        if state.stopped == "budget":
            lines += [f"Stopped early: the LLM spend reached run.max_cost_usd="
                      f"{cfg.run.max_cost_usd} USD.", ""]
        lines += ["## Configuration", "", "| setting | value |", "|---|---|",
                  f"| env | {cfg.env.name} (`{cfg.env._target_}`) |",
                  f"| agent | {cfg.agent.name} (`{cfg.agent._target_}`) |",
                  f"| seed | {cfg.seed} |",
                  f"| total steps | {cfg.run.total_steps} |",
                  f"| eval episodes / seed | {cfg.run.eval_episodes} from seed {cfg.run.eval_seed} |",
                  "", "## Final metrics", "", "| metric | value |", "|---|---|",
                  f"| steps | {state.step} |", f"| episodes | {state.episode} |"]
        if rets:
            recent = rets[-self.window:]
            lines += [f"| mean training return (last {len(recent)} episodes) | {np.mean(recent):.4f} |",
                      f"| best training return | {max(rets):.4f} |"]
        if self.evals:
            step, results = self.evals[-1]
            lines.append(f"| last evaluation | at step {step} |")
            lines += [f"| {key} | {value:.4f} |" for key, value in sorted(results.items())]
        lines += self._baseline_lines(state)
        lines += self._model_lines(state)
        lines += ["", "## Artifacts", "",
                  f"- reward curve: `{self.artifact_path}/reward_curve.png`",
                  "", "![reward curve](reward_curve.png)", ""]
        if state.eval_episodes:
            lines += [f"- the final evaluation's episodes ({len(state.eval_episodes)}: seed, "
                      "return, rounds, won, score, cost_usd): `eval/episodes.csv`", ""]
        replays = state.extras.get("replay_artifacts") or []
        if replays:
            lines += ["### Replays (last evaluation)", ""]
            lines += [f"- `{p}`" for p in replays]
            run_arg = run_id or "<run id>"
            lines += ["", f"Play one back: `python -m pipeline.replay run_id={run_arg} episode=0`", ""]
        media = sorted(p for p in (Path(state.output_dir) / "media").glob("*") if p.is_file())
        if media:
            lines += ["### Media", ""] + [f"- `media/{p.name}`" for p in media] + [""]
        path.write_text("\n".join(lines))
        return path

    def _baseline_lines(self, state: RunState) -> list[str]:
        if self.baselines == "none":
            return []
        cfg = state.cfg
        lines = ["", "## Baselines", ""]
        if not self.baseline_results:
            lines.append(f"None known for env {cfg.env.name} (computed only for the Balatro "
                         "simulator; give values with callbacks.report.known."
                         f"{cfg.env.name}.<name>=<mean return>).")
        else:
            first, n = int(cfg.run.eval_seed), int(cfg.run.eval_episodes)
            lines += [f"Greedy evaluation on the run's seeds {first}..{first + n - 1} "
                      "(computed baselines play exactly these deals).", "",
                      "| agent | mean return | win rate | mean rounds reached | mean final score "
                      "| episodes | source |", "|---|---:|---:|---:|---:|---:|---|"]
            if state.eval_episodes:
                rows = state.eval_episodes
                lines.append(
                    f"| **this run ({cfg.agent.name})** | {_mean(rows, 'return')} | "
                    f"{_mean(rows, 'won')} | {_mean(rows, 'rounds')} | {_mean(rows, 'score')} | "
                    f"{len(rows)} | final evaluation |")
            for b in self.baseline_results:
                source = {"computed": f"computed in {b.seconds:.2f} s", "cached": "cached",
                          "given": "given (callbacks.report.known)"}[b.source]
                lines.append(f"| {b.name} | {_fmt(b.ep_return)} | {_fmt(b.won)} | "
                             f"{_fmt(b.rounds)} | {_fmt(b.score)} | {b.episodes or '-'} | "
                             f"{source} |")
        if self.skipped:
            lines += ["", "Left out: " + "; ".join(self.skipped) + "."]
        return lines

    def _model_lines(self, state: RunState) -> list[str]:
        """The registry's versions created by this run, as the registry is at run end
        (after best_model registered its last best and moved @champion)."""
        lister = getattr(state.tracker, "run_model_versions", None)
        if lister is None or getattr(state.tracker, "run_id", None) is None:
            return []
        try:
            versions = lister()
        except Exception as ex:  # noqa: BLE001 - the report goes on without the list
            log.warning("ReportCallback: could not list the registered models: %s", ex)
            return ["", "## Registered models", "", f"(could not read the registry: "
                    f"{type(ex).__name__})"]
        lines = ["", "## Registered models", ""]
        if not versions:
            return lines + ["This run registered no model versions (only agents with a policy "
                            "network register best models; see callbacks.best_model)."]
        lines += ["| model | version | aliases | metric | value | step | load with |",
                  "|---|---:|---|---|---:|---:|---|"]
        for v in versions:
            tags = v.get("tags", {})
            uris = [f"`models:/{v['name']}/{v['version']}`"]
            uris += [f"`models:/{v['name']}@{a}`" for a in v["aliases"]]
            aliases = ", ".join(f"@{a}" for a in v["aliases"]) or "-"
            value = tags.get("value")
            lines.append(f"| {v['name']} | {v['version']} | {aliases} | {tags.get('metric', '-')} "
                         f"| {_fmt(float(value)) if value else '-'} | {tags.get('step', '-')} | "
                         f"{' or '.join(uris)} |")
        return lines


# ---------------------------------------------------------------- baselines
def _is_balatro_simulator(env: Any) -> bool:
    """The heuristic reads the simulator's observation and info: only BalatroEnv qualifies
    (not balatro_live, which plays the real game, nor Game Boy envs)."""
    from pipeline.envs.balatro import BalatroEnv

    return isinstance(getattr(env, "unwrapped", env), BalatroEnv)


def compute_baseline(env_cfg: Any, name: str, episodes: int, first_seed: int, *,
                     max_s: float = 10.0, cache_dir: Path | None = None) -> Baseline | None:
    """Baseline agent `name` (random | heuristic) on a fresh env from `env_cfg`, greedy on
    seeds first_seed .. first_seed+episodes-1 through pipeline.run.evaluate; None when it
    takes (or, at its pace so far, would take) longer than `max_s` seconds. Cached in memory
    and under `cache_dir`."""
    import pipeline.envs  # noqa: F401 - registers the envs with gymnasium
    from pipeline.run import evaluate, instantiate_component

    env_node = OmegaConf.to_container(env_cfg, resolve=True) if OmegaConf.is_config(env_cfg) \
        else dict(env_cfg)
    key = _cache_key(env_node, name, episodes, first_seed)
    cached = _MEMORY.get(key) or _read_cache(cache_dir, key)
    if cached is not None:
        _MEMORY[key] = cached
        return Baseline(**{**cached, "source": "cached", "seconds": 0.0})
    start = time.perf_counter()
    env = instantiate_component(env_node, "env")
    try:
        agent = instantiate_component({"_target_": BASELINE_AGENTS[name]}, f"baseline {name}",
                                      observation_space=env.observation_space,
                                      action_space=env.action_space, env=env.unwrapped,
                                      seed=BASELINE_SEED)
        rows: list[dict[str, Any]] = []
        for i in range(episodes):  # one at a time, to stop at the time limit
            evaluate(agent, env, 1, first_seed + i, rows=rows)
            elapsed = time.perf_counter() - start
            projected = elapsed / (i + 1) * episodes
            # Give up as soon as the pace says it will not make it (past 1 s, so the noise
            # of the first short episodes decides nothing), not only once the time is gone.
            if i + 1 < episodes and (elapsed > max_s or (elapsed > 1.0 and projected > max_s)):
                log.info("ReportCallback: the %s baseline would take about %.0f s for %d "
                         "episodes (callbacks.report.max_s=%g); left out", name, projected,
                         episodes, max_s)
                return None
    finally:
        env.close()
    seconds = time.perf_counter() - start
    found = Baseline(name, _nanmean(rows, "return"), "computed", episodes, first_seed,
                     _nanmean(rows, "won"), _nanmean(rows, "rounds"), _nanmean(rows, "score"),
                     seconds)
    record = {k: v for k, v in asdict(found).items() if k not in ("source", "seconds")}
    _MEMORY[key] = record
    _write_cache(cache_dir, key, record)
    log.info("ReportCallback: %s baseline on %d evaluation episodes: mean return %.4g "
             "(%.2f s)", name, episodes, found.ep_return, seconds)
    return found


def _cache_key(env_node: dict[str, Any], name: str, episodes: int, first_seed: int) -> str:
    """The env config, the seeds, the agent and the source of the code that decides the
    numbers (the env's package, the baseline agents, the evaluation loop)."""
    import pipeline.agents.baselines as baselines
    import pipeline.run as run

    import importlib

    target = str(env_node.get("_target_", ""))
    module = importlib.import_module(target.rsplit(".", 1)[0]) if "." in target else None
    files = [Path(baselines.__file__), Path(run.__file__)]
    if module is not None and getattr(module, "__file__", None):
        files += sorted(Path(module.__file__).parent.glob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    settings = {k: v for k, v in env_node.items() if k != "render_mode"}
    digest.update(json.dumps([settings, name, BASELINE_SEED, episodes, first_seed],
                             sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def _read_cache(cache_dir: Path | None, key: str) -> dict[str, Any] | None:
    if cache_dir is None:
        return None
    try:
        record = json.loads((cache_dir / f"{key}.json").read_text())
        Baseline(**{**record, "source": "cached"})  # a record of another shape is ignored
        return record
    except (OSError, ValueError, TypeError):
        return None


def _write_cache(cache_dir: Path | None, key: str, record: dict[str, Any]) -> None:
    if cache_dir is None:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{key}.{time.time_ns()}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(cache_dir / f"{key}.json")  # atomic: parallel sweep jobs may race here
    except OSError as ex:
        log.info("ReportCallback: baseline cache not written (%s)", ex)


def _nanmean(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else math.nan


def _mean(rows: list[dict[str, Any]], key: str) -> str:
    return _fmt(_nanmean(rows, key))


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"
