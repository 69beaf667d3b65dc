"""Committed checkpoints: a pre-training run's final weights kept in the repository, so
fine-tuning starts from them without pre-training again (issue 15).

    python -m bert_repro.pretraining.export runs/pretraining/<run dir> [--dtype float16]
    python run.py +experiment=glue_sst2 model.pretrained=results/checkpoints/<experiment>

Writes results/checkpoints/<name>/ (default name: the run's experiment): the run's Hugging Face
directory (config, vocab, tokenizer, pretraining.json) with the weights as safetensors in the
chosen dtype, and adds the files' sha256 to the run's record (a record whose export the new files
replace says so). float16 storage halves the file
(BERT-mini: 45 -> 23 MB, inside the repository's ~25 MB per checkpoint); loading casts back to
float32, so a fine-tune starts from the float16-rounded weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from bert_repro.data.io import write_json_atomic
from bert_repro.models.factory import sha256_file
from bert_repro.results.record import store_record

WEIGHTS = "model.safetensors"
DTYPES = {"float32": np.float32, "float16": np.float16}


def export_checkpoint(source: Path, target: Path, dtype: str) -> dict[str, str]:
    """Copy `source` (a saved checkpoint dir) to `target`, weights stored as `dtype`; returns
    each written file's sha256."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype}")
    weights = load_file(source / WEIGHTS)
    stored = {
        name: array.astype(DTYPES[dtype]) if np.issubdtype(array.dtype, np.floating) else array
        for name, array in weights.items()
    }
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.name != WEIGHTS:
            shutil.copy2(path, target / path.name)
    save_file(stored, target / WEIGHTS, metadata={"format": "pt"})
    return {path.name: sha256_file(path) for path in sorted(target.iterdir())}


def export_run(run_dir: Path, results: Path, dtype: str, name: str | None = None) -> dict[str, Any]:
    """Export a finished run's checkpoint and record where it went (and its hashes)."""
    record = json.loads((run_dir / "record.json").read_text())
    target = results / "checkpoints" / (name or record["experiment"])
    files = export_checkpoint(run_dir / "checkpoint", target, dtype)
    record["export"] = {"path": str(target), "dtype": dtype, "sha256": files}
    store_record(record, run_dir, results)
    _mark_replaced(results, record["export"]["path"], record["run_id"])
    return record["export"]


def _mark_replaced(results: Path, path: str, run_id: str) -> None:
    """Other runs' records whose export `path` held now describe files that are gone: their
    `export` becomes `export_replaced`, naming the run whose weights replaced them."""
    for stored in sorted((results / "runs").glob("*/*.json")):
        other = json.loads(stored.read_text())
        export = other.get("export") or {}
        if export.get("path") == path and other.get("run_id") != run_id:
            other["export_replaced"] = {**other.pop("export"), "by": run_id}
            write_json_atomic(stored, other)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished pre-training run's directory")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--name", help="folder under results/checkpoints (default: experiment)")
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    export = export_run(args.run_dir, args.results, args.dtype, args.name)
    size = (Path(export["path"]) / WEIGHTS).stat().st_size / 1e6
    print(f"{export['path']}: {WEIGHTS} {size:.1f} MB ({args.dtype})")


if __name__ == "__main__":
    main()
