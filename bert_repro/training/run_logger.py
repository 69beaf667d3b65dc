"""Per-run logging: a JSON-lines history in the run dir always, mirrored to W&B when enabled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bert_repro.config import run_id
from bert_repro.training import distributed


class RunLogger:
    """`log({"step": ..., ...})` for training rows, `log({"eval": {...}})` for evaluations."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self._file = None
        self._wandb = None
        if not distributed.is_main():  # data parallel: rank 0 logs for every rank
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = (run_dir / "train_log.jsonl").open("a")
        if cfg.logger.wandb:
            import wandb

            self._wandb = wandb.init(
                project=cfg.logger.project,
                entity=cfg.logger.entity,
                mode=cfg.logger.mode,
                dir=str(run_dir),
                name=run_dir.name,
                id=f"{cfg.task.name}-{run_id(cfg)}",
                resume="allow",
                config=OmegaConf.to_container(cfg, resolve=True),
            )

    def log(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        if self._wandb is not None:
            row = entry.get("eval", entry)
            prefix = "dev/" if "eval" in entry else "train/"
            self._wandb.log({f"{prefix}{k}": v for k, v in row.items()}, step=row["step"])

    def finish(self, final_metrics: dict[str, float]) -> None:
        if self._wandb is not None:
            self._wandb.summary.update({f"dev/{k}": v for k, v in final_metrics.items()})
            self._wandb.finish()
        if self._file is not None:
            self._file.close()
