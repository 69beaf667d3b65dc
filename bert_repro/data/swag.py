"""SWAG (Zellers et al., 2018) as the BERT paper frames it (section 4.4): four (context, ending)
pairs per example, sentence A = the given sentence, sentence B = the second sentence's start plus
one candidate ending; the answer is the ending whose pair scores highest.

Data: the hub (`allenai/swag`, config `regular`), the original CSV files (train.csv / val.csv), or
JSON lines with the same columns (sent1, sent2, ending0..ending3, label).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert_repro.data.glue import Example
from bert_repro.data.io import load_hub_rows
from bert_repro.errors import UserError

SAMPLE_FILE = Path(__file__).resolve().parent / "samples" / "swag" / "sample.jsonl"
NUM_CHOICES = 4
HUB_SPLITS = {"train": "train", "dev": "validation"}
LOCAL_STEMS = {"train": "train", "dev": "val"}  # the original release's file names
ROW_FORMAT = "each SWAG row needs sent1, sent2, ending0..ending3 and a label 0-3"


@dataclass(frozen=True)
class SwagExample:
    guid: str
    context: str  # sent1
    start: str  # sent2: the first words of the sentence to complete
    endings: tuple[str, ...]  # four candidate completions of `start`
    label: int


def parse_rows(rows: Iterable[Mapping[str, Any]], origin: str) -> list[SwagExample]:
    """Check and convert rows; a malformed row is a one-line error naming it."""
    examples = []
    for number, row in enumerate(rows, start=1):
        where = f"{origin} row {number}"
        for key in ("sent1", "sent2", *(f"ending{i}" for i in range(NUM_CHOICES))):
            if not isinstance(row.get(key), str):
                raise UserError(f"{where} has no {key}; {ROW_FORMAT}")
        try:
            label = int(row.get("label"))
        except (TypeError, ValueError):
            label = -1
        if not 0 <= label < NUM_CHOICES:
            raise UserError(f"{where} has label {row.get('label')!r}; {ROW_FORMAT}")
        endings = tuple(row[f"ending{i}"] for i in range(NUM_CHOICES))
        guid = str(row.get("video-id") or row.get("fold-ind") or number)
        examples.append(SwagExample(guid, row["sent1"], row["sent2"], endings, label))
    if not examples:
        raise UserError(f"{origin} holds no SWAG rows")
    return examples


def read_swag_file(path: Path) -> list[SwagExample]:
    """The original CSV release or JSON lines, by extension."""
    if not path.is_file():
        raise UserError(f"missing SWAG file {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            return parse_rows(csv.DictReader(handle), str(path))
        try:
            rows = [json.loads(line) for line in handle if line.strip()]
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not JSON lines ({err.msg}, line {err.lineno})") from None
        return parse_rows(rows, str(path))


def local_swag_file(root: str | Path, split: str) -> Path:
    root = Path(root).expanduser()
    stem = LOCAL_STEMS[split]
    for name in (f"{stem}.csv", f"{stem}.jsonl"):
        if (root / name).is_file():
            return root / name
    raise UserError(
        f"no {stem}.csv or {stem}.jsonl in {root}; data.root must hold the SWAG release files"
    )


def load_swag(source: str, split: str, root: str | None, hub_dataset: str) -> list[SwagExample]:
    """One split from the configured source; the shipped sample serves as both splits."""
    if source == "sample":
        return read_swag_file(SAMPLE_FILE)
    if source == "local":
        if not root:
            raise UserError("data=local needs data.root=<folder holding train.csv and val.csv>")
        return read_swag_file(local_swag_file(root, split))
    if source != "hub":
        raise UserError(f"unknown data.source '{source}': choose hub, local or sample")
    if hub_dataset == "nyu-mll/glue":
        raise UserError(
            "data.hub_dataset=nyu-mll/glue is GLUE; for SWAG set data.hub_dataset=allenai/swag "
            "(the swag experiment does)"
        )
    rows = load_hub_rows(
        hub_dataset,
        "regular",
        HUB_SPLITS[split],
        "data=local data.root=<folder holding train.csv and val.csv>",
    )
    return parse_rows(rows, f"{hub_dataset} [{HUB_SPLITS[split]}]")


def choice_pairs(examples: Iterable[SwagExample]) -> list[Example]:
    """Four (A, B) pairs per example, in order: A = context, B = start + " " + ending."""
    return [
        Example(f"{e.guid}-{i}", e.context, f"{e.start} {ending}", None)
        for e in examples
        for i, ending in enumerate(e.endings)
    ]
