"""`python -m pipeline [overrides]`: compose conf/ with Hydra and hand it to run.main."""
from __future__ import annotations

import shutil
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipeline.cli import guarded, one_line_error, report_and_exit
from pipeline.config import register_configs

register_configs()


CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeline import run

    try:
        return run.main(cfg)
    except Exception as ex:
        # In a single run, a user error ends here as one line (Hydra would add its own
        # report first); in a sweep the job is recorded as a FAILED child run and the
        # sweep goes on (Hydra's sweepers would stop at the first failed job).
        if HydraConfig.get().mode == RunMode.RUN and one_line_error(ex) is not None:
            _discard_empty_run_dir(Path(HydraConfig.get().runtime.output_dir),
                                   Path(HydraConfig.get().runtime.cwd))
            report_and_exit(ex)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            from pipeline.tracking.sweep import job_failed

            return job_failed(cfg, ex)
        raise


def _discard_empty_run_dir(path: Path, cwd: Path) -> None:
    """A run refused before it started leaves no run dir behind (only Hydra's own files),
    nor the folders above it that are left empty (outputs/runs/<date>/), up to `cwd`."""
    if not all(p.name in (".hydra", "pipeline.log") for p in path.iterdir()):
        return
    shutil.rmtree(path, ignore_errors=True)
    cwd = cwd.resolve()
    for parent in path.resolve().parents:
        if parent == cwd or cwd not in parent.parents:
            break
        try:
            parent.rmdir()   # only an empty folder; another run's files stop the walk
        except OSError:
            break


if __name__ == "__main__":
    guarded(_main)
