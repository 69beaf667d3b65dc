"""GLUE examples from a local GLUE directory, the repo's samples, or the dataset hub."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from bert_repro.data.io import load_hub_rows
from bert_repro.errors import UserError
from bert_repro.tasks.glue import GlueTask, LocalSplit

SAMPLES_DIR = Path(__file__).resolve().parent / "samples" / "glue"
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Example:
    guid: str  # the split's example id (GLUE submissions are keyed by it)
    text_a: str
    text_b: str | None
    label: int | float | None  # class index, regression score, or None for unlabelled test data


def read_glue_tsv(path: Path, layout: LocalSplit, task: GlueTask) -> list[Example]:
    """Read one GLUE TSV with quoting disabled: sentences contain quote characters."""
    if not path.is_file():
        raise UserError(f"missing GLUE file {path} (expected the original GLUE layout)")
    try:
        examples = _read_rows(path, layout, task)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path}:{_first_undecodable_line(path)}: not UTF-8 ({err.reason}); "
            "re-save the file as UTF-8 or delete that line"
        ) from None
    if not examples:
        raise UserError(
            f"{path} holds no examples (empty, or a header only); restore it from the GLUE release"
        )
    return examples


def _read_rows(path: Path, layout: LocalSplit, task: GlueTask) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for lineno, row in enumerate(rows, start=1):
            if layout.header and lineno == 1:
                continue
            if len(row) < layout.min_columns:
                raise UserError(
                    f"{path}:{lineno}: malformed line, expected at least {layout.min_columns} "
                    f"tab-separated columns, found {len(row)}; fix or delete that line"
                )
            label = None if layout.label is None else _parse_label(row[layout.label], task)
            if layout.label is not None and label is None:
                raise UserError(
                    f"{path}:{lineno}: label '{row[layout.label]}' is not one of "
                    f"{list(task.labels) or 'a number'}; fix or delete that line"
                )
            guid = row[layout.index] if layout.index is not None else str(len(examples))
            text_b = row[layout.text_b] if layout.text_b is not None else None
            examples.append(Example(guid, row[layout.text_a], text_b, label))
    return examples


def _first_undecodable_line(path: Path) -> int:
    """The line number to name in the error: the decoder's offset counts characters, not lines."""
    for lineno, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return lineno
    return 0


def _parse_label(raw: str, task: GlueTask) -> int | float | None:
    raw = raw.strip()
    if task.is_regression:
        try:
            return float(raw)
        except ValueError:
            return None
    return task.labels.index(raw) if raw in task.labels else None


def load_local(task: GlueTask, root: str | Path, split: str) -> list[Example]:
    """`split` is train, a dev split (dev, dev_matched, ...) or a test split."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(
            f"data directory not found: {root} (use data=local data.root=<folder holding "
            f"{task.glue_dir}/ in the original GLUE layout>)"
        )
    layouts = {"train": task.local_train, **task.local_dev, **task.local_test}
    if layouts.get(split) is None:
        raise UserError(f"task {task.name} has no split '{split}'; choose one of {list(layouts)}")
    return read_glue_tsv(root / task.glue_dir / layouts[split].file, layouts[split], task)


def load_hub(task: GlueTask, dataset: str, split: str) -> list[Example]:
    """GLUE from the hub via `datasets`; fails fast with the offline alternative named."""
    hub_split = split.replace("dev", "validation") if split.startswith("dev") else split
    hub_split = HUB_SPLITS.get(hub_split, hub_split)
    rows = load_hub_rows(
        dataset,
        task.hub_config,
        hub_split,
        "data=local data.root=/path/to/glue (or data=sample)",
    )
    a, b = task.hub_columns[0], task.hub_columns[1] if task.is_pair else None
    examples = []
    for row in rows:
        label = row["label"]
        label = None if label == -1 else (float(label) if task.is_regression else int(label))
        examples.append(Example(str(row["idx"]), row[a], row[b] if b else None, label))
    return examples


def load_examples(
    task: GlueTask, source: str, split: str, root: str | None = None, hub_dataset: str = ""
) -> list[Example]:
    """One entry point for every data source named in conf/data/."""
    if source == "local":
        if not root:
            raise UserError("data=local needs data.root=/path/to/glue")
        return load_local(task, root, split)
    if source == "sample":
        if not (SAMPLES_DIR / task.glue_dir).is_dir():
            shipped = sorted(p.name for p in SAMPLES_DIR.iterdir())
            raise UserError(
                f"no shipped sample for {task.name} (samples: {', '.join(shipped)}); "
                "use data=local data.root=/path/to/glue or data=hub"
            )
        return load_local(task, SAMPLES_DIR, split)
    if source == "hub":
        return load_hub(task, hub_dataset, split)
    raise UserError(f"unknown data.source '{source}': choose hub, local or sample")
