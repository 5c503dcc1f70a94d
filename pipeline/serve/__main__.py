"""`python -m pipeline.serve [overrides]`: compose conf/serve.yaml and serve the agent API."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pipeline.cli import guarded, report_and_exit
from pipeline.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="serve")
def _main(cfg: DictConfig) -> None:
    from pipeline.serve import api

    try:
        api.main(cfg)
    except Exception as ex:
        report_and_exit(ex)  # a user error: one line (before Hydra adds its own report)
        raise


if __name__ == "__main__":
    guarded(_main)
