"""Entry point: `python run.py experiment=glue_mrpc [overrides]` (see README.md)."""

import sys

import hydra
from omegaconf import DictConfig

from bert_repro.cli import preflight, run_stage
from bert_repro.config import canonical_overrides, register

register()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_stage(cfg)


if __name__ == "__main__":
    sys.argv[1:] = canonical_overrides(sys.argv[1:])
    preflight(sys.argv[1:])
    main()
