"""The model lifecycle of a run: registered best models, the champion, the final exports.

During training two registered models follow the agent's policy network:
`<env>_<agent>_best_episode` (a new best of the evaluation metric, `eval/ep_return`) and
`<env>_<agent>_best_average` (a new best mean return over the last `average_window`
training episodes). Each version is the network as an mlflow.pytorch model, tagged with
the metric, its value, the step and the run; `@best` moves to it. A new best within
`min_steps_between` env steps of the last registration waits (its weights are kept) and
is registered when that time has passed or at the end of the run, so noisy episodes do
not each make a version.

At the end of the run: the final policy is logged as the pyfunc model `policy`
(pipeline/models/dqn_policy.py), the run as the pyfunc model `game_session`
(pipeline/models/game_session.py), and `@best` of the best-episode model challenges
`@champion` on `champion_episodes` seeds; `@champion` moves only on a significant win
(`decide_champion`), and the decision is logged (metrics `champion/*`, artifact
`champion/decision.json`).

Everything goes through the tracker; with `tracking=none`, or for agents without a
policy network (random, heuristic, LLM), the network parts are skipped with one log line.
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from omegaconf import OmegaConf

from pipeline.callbacks.base import Callback, EpisodeSummary, RunState

log = logging.getLogger(__name__)

TESTS = ("welch", "bootstrap")


# ---------------------------------------------------------------- the champion decision
@dataclass
class ChampionDecision:
    promote: bool
    reason: str
    test: str
    candidate_mean: float
    champion_mean: float
    diff: float  # candidate mean - champion mean
    margin: float
    alpha: float
    p_value: float | None = None  # welch: one-sided p of "diff > margin"
    ci_low: float | None = None  # bootstrap: the alpha quantile of the mean difference
    ci_high: float | None = None  # bootstrap: the 1 - alpha quantile


def decide_champion(candidate: Sequence[float], champion: Sequence[float], *,
                    test: str = "welch", alpha: float = 0.05, margin: float = 0.0,
                    bootstrap_samples: int = 10_000, seed: int = 0) -> ChampionDecision:
    """Whether `candidate` returns beat `champion` returns by more than `margin`, one-sided
    at level `alpha`.

    welch: Welch's t-test (unequal variances) of mean(candidate) - margin > mean(champion);
    promote when p < alpha. bootstrap: resample each sample `bootstrap_samples` times;
    promote when the alpha quantile of the mean difference (a one-sided 1 - alpha
    confidence bound) is above `margin`. Samples without any spread (deterministic
    policies on the same seeds) promote exactly when the difference exceeds `margin`.
    """
    c, h = np.asarray(candidate, dtype=float), np.asarray(champion, dtype=float)
    if len(c) < 2 or len(h) < 2:
        raise ValueError(f"decide_champion: need at least 2 returns per model (got {len(c)} "
                         f"and {len(h)})")
    if test not in TESTS:
        raise ValueError(f"decide_champion: test {test!r} is not a test (expected one of: "
                         f"{', '.join(TESTS)})")
    diff = float(c.mean() - h.mean())
    out = ChampionDecision(False, "", test, float(c.mean()), float(h.mean()), diff,
                           float(margin), float(alpha))
    if np.ptp(c) == 0 and np.ptp(h) == 0:
        out.promote = diff > margin
        out.p_value = 0.0 if out.promote else 1.0
        out.ci_low = out.ci_high = diff
        out.reason = (f"no spread in either sample: difference {diff:.4g} "
                      f"{'>' if out.promote else '<='} margin {margin:g}")
        return out
    if test == "welch":
        from scipy import stats

        with warnings.catch_warnings():  # one constant sample is fine for Welch's test
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_ind(c - margin, h, equal_var=False,
                                      alternative="greater").pvalue)
        out.p_value = p if math.isfinite(p) else 1.0
        out.promote = out.p_value < alpha
        out.reason = (f"Welch t-test: difference {diff:.4g} over margin {margin:g} has one-sided "
                      f"p={out.p_value:.3g} {'<' if out.promote else '>='} alpha={alpha:g}")
    else:
        rng = np.random.default_rng(seed)
        means_c = c[rng.integers(len(c), size=(bootstrap_samples, len(c)))].mean(axis=1)
        means_h = h[rng.integers(len(h), size=(bootstrap_samples, len(h)))].mean(axis=1)
        low, high = np.quantile(means_c - means_h, [alpha, 1.0 - alpha])
        out.ci_low, out.ci_high = float(low), float(high)
        out.promote = out.ci_low > margin
        out.reason = (f"bootstrap: the {1 - alpha:.0%} lower bound of the difference, "
                      f"{out.ci_low:.4g}, is {'above' if out.promote else 'not above'} "
                      f"margin {margin:g}")
    return out


# ---------------------------------------------------------------- the callback
@dataclass
class _Target:
    """One registered best model and its bookkeeping."""

    kind: str  # best_episode | best_average
    name: str  # registered model name
    metric: str
    best: float = -math.inf  # best value seen (registered or waiting)
    last_step: int | None = None  # env step of the last registration
    pending: dict[str, Any] | None = field(default=None)  # a waiting best: value, step, weights


class BestModelCallback(Callback):
    """Registers best models during training; logs the final models; moves @champion."""

    def __init__(self, metric: str = "eval/ep_return", average_window: int = 10,
                 min_steps_between: int = 10_000, min_delta: float = 0.0, register: bool = True,
                 champion: bool = True, champion_episodes: int = 20, champion_seed: int = 20_000,
                 champion_test: str = "welch", champion_alpha: float = 0.05,
                 champion_margin: float = 0.0, bootstrap_samples: int = 10_000,
                 log_policy: bool = True, log_game_session: bool = True) -> None:
        where = "callbacks.best_model"
        if int(average_window) < 1:
            raise ValueError(f"{where}.average_window: {average_window} must be at least 1")
        if int(min_steps_between) < 0:
            raise ValueError(f"{where}.min_steps_between: {min_steps_between} must be >= 0")
        if int(champion_episodes) < 2:
            raise ValueError(f"{where}.champion_episodes: {champion_episodes} must be at least 2")
        if champion_test not in TESTS:
            raise ValueError(f"{where}.champion_test: {champion_test!r} is not a test "
                             f"(expected one of: {', '.join(TESTS)})")
        if not 0.0 < float(champion_alpha) < 1.0:
            raise ValueError(f"{where}.champion_alpha: {champion_alpha} must be in (0, 1)")
        if int(bootstrap_samples) < 100:
            raise ValueError(f"{where}.bootstrap_samples: {bootstrap_samples} must be >= 100")
        self.metric, self.average_window = metric, int(average_window)
        self.min_steps_between, self.min_delta = int(min_steps_between), float(min_delta)
        self.register, self.champion = bool(register), bool(champion)
        self.champion_episodes, self.champion_seed = int(champion_episodes), int(champion_seed)
        self.champion_test, self.champion_alpha = champion_test, float(champion_alpha)
        self.champion_margin, self.bootstrap_samples = float(champion_margin), int(bootstrap_samples)
        self.log_policy, self.log_game_session = bool(log_policy), bool(log_game_session)
        self.net: Any = None
        self.tracking = False
        self.trains = True   # run.total_steps > 0 (set by on_run_start)
        self.targets: dict[str, _Target] = {}
        self.decision: dict[str, Any] | None = None  # the last champion decision, for tests
        self.logged: dict[str, dict[str, str]] = {}  # final models: name -> model_id/model_uri

    # ---- hooks
    def on_run_start(self, state: RunState) -> None:
        self.tracking = getattr(state.tracker, "run_id", None) is not None
        get_net = getattr(state.agent, "policy_model", None)
        self.net = get_net() if callable(get_net) else None
        self.trains = int(OmegaConf.select(state.cfg, "run.total_steps", default=1)) > 0
        prefix = f"{state.cfg.env.name}_{state.cfg.agent.name}"
        self.targets = {kind: _Target(kind, f"{prefix}_{kind}", metric) for kind, metric in
                        (("best_episode", self.metric),
                         ("best_average", f"rollout/ep_return_mean{self.average_window}"))}
        if not self.tracking:
            log.info("BestModelCallback: tracking is off; no models are logged or registered")
        elif self.net is None:
            log.info("BestModelCallback: agent %s has no policy network (policy_model() gives "
                     "none); no best models, no champion, no policy model",
                     state.cfg.agent.name)
        elif not self.trains:
            log.info("BestModelCallback: run.total_steps=0 (an evaluation, nothing trained): "
                     "no best models registered, no champion challenge")
        elif self.register and state.step > 0:
            self._restore(state)

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        if self._active():
            if len(state.returns) >= self.average_window:
                avg = float(np.mean(state.returns[-self.average_window:]))
                self._offer(state, self.targets["best_average"], avg)
            self._flush(state, due_only=True)
        return True

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        if self._active() and self.metric in results:
            self._offer(state, self.targets["best_episode"], float(results[self.metric]))

    def on_run_end(self, state: RunState) -> None:
        if not self.tracking:
            return
        if self._active():
            self._flush(state, due_only=False)
        if self.net is not None and self.log_policy:
            self._guarded("logging the policy model", self._log_policy, state)
        if self.log_game_session:
            self._guarded("logging the game-session model", self._log_game_session, state)
        if self._active() and self.champion:
            self._guarded("the champion challenge", self._challenge, state)

    # ---- best models
    def _active(self) -> bool:
        return self.tracking and self.register and self.net is not None and self.trains

    def _offer(self, state: RunState, target: _Target, value: float) -> None:
        """A new value of the target's metric: register it now, keep it waiting, or ignore it."""
        if not value > target.best + self.min_delta:
            return
        target.best = value
        if target.last_step is None or state.step - target.last_step >= self.min_steps_between:
            target.pending = None
            self._guarded(f"registering {target.name}", self._register, state, target, value,
                          state.step, self.net)
        else:
            target.pending = {"value": value, "step": state.step, "episode": state.episode,
                              "weights": {k: v.detach().cpu().clone()
                                          for k, v in self.net.state_dict().items()}}

    def _flush(self, state: RunState, due_only: bool) -> None:
        from pipeline.models.common import cpu_copy

        for target in self.targets.values():
            p = target.pending
            if p is None or (due_only and target.last_step is not None
                             and state.step - target.last_step < self.min_steps_between):
                continue
            target.pending = None
            self._guarded(f"registering {target.name}", self._register, state, target,
                          p["value"], p["step"], cpu_copy(self.net, p["weights"]), p["episode"])

    def _register(self, state: RunState, target: _Target, value: float, step: int, net: Any,
                  episode: int | None = None) -> None:
        from pipeline.models.common import cpu_copy, network_signature, network_spec

        tracker = state.tracker
        spec = network_spec(net, state.env.observation_space.dtype)
        info = tracker.log_pytorch_model(cpu_copy(net), target.kind, step=step,
                                         signature=network_signature(spec),
                                         tags={"metric": target.metric, "value": value})
        tags = {"metric": target.metric, "value": repr(float(value)), "step": str(step),
                "episode": str(state.episode if episode is None else episode),
                "run_id": tracker.run_id}
        version = tracker.register_model(target.name, info["model_uri"], tags=tags,
                                         aliases=("best",))
        target.last_step = state.step
        tracker.log_metrics({f"best_model/{target.kind}": value}, step)
        log.info("Registered %s version %s (%s = %.4g at step %d); @best points at it",
                 target.name, version, target.metric, value, step)

    def _restore(self, state: RunState) -> None:
        """After a resume: continue from this run's own registered bests."""
        for target in self.targets.values():
            mv = state.tracker.get_alias_version(target.name, "best")
            if mv and mv["tags"].get("run_id") == state.tracker.run_id:
                target.best = float(mv["tags"]["value"])
                target.last_step = int(mv["tags"]["step"])

    # ---- final models
    def _log_policy(self, state: RunState) -> None:
        from pipeline.models.common import (DQN_POLICY_FILE, dqn_policy_example,
                                            dqn_policy_signature, network_spec, save_network)

        network_spec(self.net)  # raises a clear TypeError for networks the file cannot load
        artifacts = save_network(self.net, state.output_dir / "models" / "policy",
                                 state.env.observation_space.dtype)
        self.logged["policy"] = state.tracker.log_pyfunc_model(
            "policy", DQN_POLICY_FILE, artifacts=artifacts, signature=dqn_policy_signature(),
            input_example=dqn_policy_example(state.obs, state.info.get("action_mask")),
            step=state.step)

    def _log_game_session(self, state: RunState) -> None:
        from omegaconf import OmegaConf

        from pipeline.models.common import (GAME_SESSION_FILE, game_session_example,
                                            game_session_signature)
        from pipeline.tracking.redact import redact

        folder = state.output_dir / "models" / "game_session"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yaml"
        config.write_text(OmegaConf.to_yaml(OmegaConf.create(
            redact(OmegaConf.to_container(state.cfg, resolve=True)))))
        artifacts = {"config": str(config)}
        if self.net is not None:
            import torch

            weights = folder / "weights.pt"
            torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, weights)
            artifacts["weights"] = str(weights)
        self.logged["game_session"] = state.tracker.log_pyfunc_model(
            "game_session", GAME_SESSION_FILE, artifacts=artifacts,
            signature=game_session_signature(), input_example=game_session_example(),
            step=state.step)

    # ---- the champion
    def _challenge(self, state: RunState) -> None:
        tracker = state.tracker
        name = self.targets["best_episode"].name
        candidate = tracker.get_alias_version(name, "best")
        if candidate is None:
            log.info("Champion: %s has no @best version (no evaluation?); nothing to challenge",
                     name)
            return
        champion = tracker.get_alias_version(name, "champion")
        seeds = list(range(self.champion_seed, self.champion_seed + self.champion_episodes))
        record: dict[str, Any] = {
            "model": name, "candidate_version": candidate["version"],
            "champion_version": champion["version"] if champion else None,
            "seeds": [seeds[0], seeds[-1]], "test": self.champion_test,
            "alpha": self.champion_alpha, "margin": self.champion_margin,
            "run_id": tracker.run_id, "step": state.step}
        if champion is not None and champion["version"] == candidate["version"]:
            record.update(promoted=False, reason="@best is already @champion")
        else:
            env = self._eval_env(state)
            try:
                cand_returns = self._returns(tracker, name, candidate["version"], env, seeds)
                record["candidate_returns"] = cand_returns
                if champion is None:
                    record.update(promoted=True, reason="no champion yet",
                                  candidate_mean=float(np.mean(cand_returns)))
                else:
                    champ_returns = self._returns(tracker, name, champion["version"], env, seeds)
                    decision = decide_champion(cand_returns, champ_returns,
                                               test=self.champion_test,
                                               alpha=self.champion_alpha,
                                               margin=self.champion_margin,
                                               bootstrap_samples=self.bootstrap_samples,
                                               seed=self.champion_seed)
                    record["champion_returns"] = champ_returns
                    record.update(asdict(decision), promoted=decision.promote)
                    record.pop("promote")
            finally:
                env.close()
            if record["promoted"]:
                tracker.set_alias(name, "champion", candidate["version"])
                tracker.set_model_version_tags(name, candidate["version"], {
                    "champion_since_run": tracker.run_id,
                    "champion_reason": record["reason"]})
        self._record(state, record)

    def _returns(self, tracker: Any, name: str, version: str, env: Any,
                 seeds: list[int]) -> list[float]:
        """Greedy return of registered version `version` on each seed."""
        from pipeline.models.common import GreedyPolicy
        from pipeline.run import evaluate

        policy = GreedyPolicy(tracker.load_pytorch_model(f"models:/{name}/{version}"))
        return [evaluate(policy, env, 1, seed)["eval/ep_return"] for seed in seeds]

    def _eval_env(self, state: RunState) -> Any:
        """A fresh env like the run's (the training env stays as the run left it)."""
        from pipeline.models.common import build_env

        return build_env(state.cfg)

    def _record(self, state: RunState, record: dict[str, Any]) -> None:
        self.decision = record
        metrics = {"champion/promoted": float(record["promoted"])}
        for key in ("candidate_mean", "champion_mean", "diff", "p_value", "ci_low", "ci_high"):
            if record.get(key) is not None:
                metrics[f"champion/{key}"] = float(record[key])
        state.tracker.log_metrics(metrics, state.step)
        folder = state.output_dir / "champion"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "decision.json"
        path.write_text(json.dumps(record, indent=2))
        state.tracker.log_artifact(path, "champion")
        log.info("Champion %s: %s (candidate v%s, champion v%s): %s", record["model"],
                 "promoted" if record["promoted"] else "kept", record["candidate_version"],
                 record["champion_version"], record["reason"])

    # ---- errors
    def _guarded(self, what: str, fn: Any, *args: Any) -> None:
        """A failed registration or export is logged, never the end of a training run."""
        try:
            fn(*args)
        except Exception as ex:  # noqa: BLE001
            log.warning("BestModelCallback: %s failed: %s: %s", what, type(ex).__name__,
                        str(ex).splitlines()[0] if str(ex) else "")
