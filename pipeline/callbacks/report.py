"""A run report at run end: a reward-curve PNG and report.md, logged under report/.

The curve shows the training episode returns (raw and a moving average) and the mean
evaluation return against env steps, from what this callback saw during the run (after a
resume, only this process's part). report.md summarises the config, the final metrics
and the artifact paths of the replays and media. Put it after replay and media in the
callbacks list so their files are listed. matplotlib is imported only at run end.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.callbacks.base import Callback, EpisodeSummary, RunState

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    def __init__(self, window: int = 20, artifact_path: str = "report") -> None:
        if int(window) < 1:
            raise ValueError(f"callbacks.report.window: {window} must be at least 1")
        self.window = int(window)
        self.artifact_path = artifact_path
        self.train: list[tuple[int, float]] = []  # (step at episode end, return)
        self.evals: list[tuple[int, dict[str, float]]] = []  # (step, results)

    def on_episode_end(self, state: RunState, episode: EpisodeSummary) -> bool:
        self.train.append((state.step, float(episode.ret)))
        return True

    def on_eval(self, state: RunState, results: dict[str, float]) -> None:
        self.evals.append((state.step, dict(results)))

    def on_run_end(self, state: RunState) -> None:
        folder = Path(state.output_dir) / self.artifact_path
        folder.mkdir(parents=True, exist_ok=True)
        paths = [self._plot(folder / "reward_curve.png"), self._markdown(state, folder / "report.md")]
        if state.tracker is not None:
            for path in paths:
                state.tracker.log_artifact(path, self.artifact_path)

    # ------------------------------------------------------------------ internals

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
        if not self.train and not evals:
            ax.text(0.5, 0.5, "no finished episodes", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_xlabel("env step")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
        if self.train or evals:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path

    def _markdown(self, state: RunState, path: Path) -> Path:
        cfg = state.cfg
        rets = [r for _, r in self.train]
        lines = [f"# Run report: {cfg.env.name} / {cfg.agent.name} / seed {cfg.seed}", ""]
        run_id = getattr(state.tracker, "run_id", None)
        if run_id:
            lines += [f"MLflow run: `{run_id}`", ""]
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
        lines += ["", "## Artifacts", "",
                  f"- reward curve: `{self.artifact_path}/reward_curve.png`",
                  "", f"![reward curve](reward_curve.png)", ""]
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
