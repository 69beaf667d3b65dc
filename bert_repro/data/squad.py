"""SQuAD v1.1 / v2.0 questions: the hub, the official JSON (or .json.gz), the shipped sample, and
the offline dev-article split (paper sections 4.2-4.3). Windowed features: `squad_features.py`.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro.data.io import load_hub_rows
from bert_repro.errors import UserError

SAMPLES_DIR = Path(__file__).resolve().parent / "samples" / "squad"
HUB_SPLITS = {"train": "train", "dev": "validation"}


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context


@dataclass(frozen=True)
class SquadExample:
    qid: str
    title: str
    question: str
    context: str
    answers: tuple[Answer, ...]  # empty: unanswerable (v2.0)


@dataclass
class SquadSplits:
    """Training and evaluation questions, and how they were obtained (for the result record)."""

    train: list[SquadExample]
    eval: list[SquadExample]
    protocol: dict[str, Any] = field(default_factory=dict)


def version_of(version_2: bool) -> str:
    return "2.0" if version_2 else "1.1"


def load_squad_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a SQuAD dataset file (.json or .json.gz), failing early on a file of the wrong kind."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        dataset = json.load(f)
    if not isinstance(dataset, dict) or "data" not in dataset:
        raise ValueError(
            f"{os.fspath(path)} has no top-level 'data' key: pass a SQuAD dataset file "
            "(e.g. dev-v1.1.json); a predictions file (id -> answer) is read with json.load"
        )
    return dataset


def read_squad_file(path: Path) -> dict[str, Any]:
    """An official-layout SQuAD file; a wrong kind of file is a one-line error."""
    try:
        return load_squad_json(path)
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not JSON ({err.msg}, line {err.lineno})") from None
    except (EOFError, OSError, UnicodeDecodeError, zlib.error) as err:  # cut short, not gzip
        reason = str(err) or type(err).__name__
        raise UserError(f"{path} is truncated or damaged ({reason}); download it again") from None
    except ValueError as err:  # no top-level 'data': the message names the file and the fix
        raise UserError(str(err)) from None


def local_squad_file(root: str | Path, split: str, version_2: bool) -> Path:
    """<root>/<split>-v<version>.json, .json.gz, or a variant like dev-v1.1.rebuilt.json.gz."""
    root = Path(root).expanduser()
    stem = f"{split}-v{version_of(version_2)}"
    if not root.is_dir():
        raise UserError(f"data directory not found: {root} (data.root=<folder with {stem}.json>)")
    exact = [root / f"{stem}.json", root / f"{stem}.json.gz"]
    found = [p for p in exact if p.is_file()] or sorted(root.glob(f"{stem}.*json*"))
    if not found:
        raise UserError(
            f"no {stem}.json or {stem}.json.gz in {root}; put the official SQuAD file there "
            "(or use data=hub)"
        )
    return found[0]


def hub_rows_to_squad(rows: Sequence[dict[str, Any]], version_2: bool) -> dict[str, Any]:
    """Hub rows (one per question) regrouped into the official layout: articles > paragraphs."""
    articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        paragraphs = articles.setdefault(row["title"], {})
        answers = row["answers"]
        paragraphs.setdefault(row["context"], []).append(
            {
                "id": row["id"],
                "question": row["question"],
                "answers": [
                    {"text": t, "answer_start": s}
                    for t, s in zip(answers["text"], answers["answer_start"], strict=True)
                ],
            }
        )
    data = [
        {"title": title, "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs.items()]}
        for title, paragraphs in articles.items()
    ]
    return {"version": version_of(version_2), "data": data}


def load_hub(hub_dataset: str, split: str, version_2: bool) -> dict[str, Any]:
    if hub_dataset == "nyu-mll/glue":
        expected = "rajpurkar/squad_v2" if version_2 else "rajpurkar/squad"
        raise UserError(
            f"data.hub_dataset={hub_dataset} is GLUE; for SQuAD set data.hub_dataset={expected} "
            "(the squad_v1/squad_v2 experiments do)"
        )
    rows = load_hub_rows(
        hub_dataset,
        None,
        HUB_SPLITS[split],
        f"data=local data.root=<folder holding {split}-v{version_of(version_2)}.json>",
    )
    return hub_rows_to_squad(rows, version_2)


def load_squad(
    source: str, split: str, root: str | None, hub_dataset: str, version_2: bool
) -> dict[str, Any]:
    """The official-layout dataset of one split from the configured source."""
    if source == "hub":
        return load_hub(hub_dataset, split, version_2)
    if source == "sample":
        root = SAMPLES_DIR
    elif source != "local":
        raise UserError(f"unknown data.source '{source}': choose hub, local or sample")
    elif not root:
        raise UserError("data=local needs data.root=<folder holding the SQuAD JSON files>")
    return read_squad_file(local_squad_file(root, split, version_2))


def parse_examples(
    dataset: dict[str, Any], version_2: bool, origin: str
) -> tuple[list[SquadExample], int]:
    """Flatten and check a dataset: (questions, how many answer_start values were repaired).

    An answer whose text is not at `answer_start` is moved to the nearest occurrence of its text;
    one absent from the context is an error. Unanswerable questions need task=squad_v2: training
    v1.1-style on v2.0 data would silently score about F1 44 (the peers' known failure).
    """
    if not isinstance(dataset.get("data"), list):
        raise UserError(f"{origin} has no top-level 'data' list; pass an official SQuAD file")
    examples, repaired, unanswerable = [], 0, 0
    for a_index, article in enumerate(dataset["data"]):
        title = str(article.get("title", f"article-{a_index}"))
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{origin}: article '{title}' paragraph {p_index}"
            if "context" not in paragraph or "qas" not in paragraph:
                raise UserError(f"{where} lacks 'context' or 'qas'; fix the file's layout")
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = []
                for answer in qa.get("answers", []):
                    start = _locate(context, answer["text"], answer.get("answer_start", 0))
                    if start is None:
                        raise UserError(
                            f"{where}: answer {answer['text']!r} of question {qa['id']} is not in "
                            "its context; fix its text or remove the question"
                        )
                    repaired += start != answer.get("answer_start")
                    answers.append(Answer(answer["text"], start))
                unanswerable += not answers
                examples.append(
                    SquadExample(str(qa["id"]), title, qa["question"], context, tuple(answers))
                )
    if not version_2 and (unanswerable or str(dataset.get("version", "")).lstrip("v") == "2.0"):
        raise UserError(
            f"{origin} is SQuAD v2.0 ({unanswerable} unanswerable questions) but the task is v1.1; "
            "use task=squad_v2 (or +experiment=squad_v2) so null answers are handled"
        )
    return examples, repaired


def _locate(context: str, text: str, start: int) -> int | None:
    """`start` if the answer text is there, else the nearest occurrence, else None."""
    if not text:
        return None
    if context[start : start + len(text)] == text:
        return start
    hits, at = [], context.find(text)
    while at != -1:
        hits.append(at)
        at = context.find(text, at + 1)
    return min(hits, key=lambda h: abs(h - start)) if hits else None


def split_articles(
    dataset: dict[str, Any], train_fraction: float, seed: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The offline protocol: a seeded split of the dev file's articles into train and eval parts.

    No SQuAD training set is available offline, so fine-tuning uses some dev articles and scoring
    the others; no article (hence no context) is in both. Not comparable to the paper's dev score.
    """
    articles = dataset["data"]
    if len(articles) < 2 or not 0.0 < train_fraction < 1.0:
        raise UserError(
            f"the dev-article split needs >= 2 articles and 0 < data.dev_split_train_fraction < 1 "
            f"(got {len(articles)} articles, fraction {train_fraction})"
        )
    order = np.random.default_rng(seed).permutation(len(articles))
    n_train = min(len(articles) - 1, max(1, round(train_fraction * len(articles))))
    train = [articles[i] for i in order[:n_train]]
    held_out = [articles[i] for i in order[n_train:]]
    info = {
        "protocol": "dev-article-split",
        "note": "fine-tuned on some SQuAD dev articles, scored on the others: not the paper's dev",
        "seed": seed,
        "train_fraction": train_fraction,
        "train_articles": len(train),
        "eval_articles": len(held_out),
        "eval_titles": [str(a.get("title")) for a in held_out],
    }
    return {**dataset, "data": train}, {**dataset, "data": held_out}, info


def load_splits(data_cfg: Any, version_2: bool) -> SquadSplits:
    """Train/eval questions from the configured source, or the offline dev-article split."""
    args = (data_cfg.source, data_cfg.root, data_cfg.hub_dataset, version_2)
    fraction = data_cfg.dev_split_train_fraction
    if fraction is not None:
        train_set, eval_set, protocol = split_articles(
            load_squad(args[0], "dev", *args[1:]), fraction, data_cfg.dev_split_seed
        )
    else:
        if data_cfg.source == "sample":
            raise UserError(
                "the shipped SQuAD sample holds dev articles only: add "
                "data.dev_split_train_fraction=0.5 (the offline dev-article split)"
            )
        train_set, eval_set = (load_squad(args[0], s, *args[1:]) for s in ("train", "dev"))
        protocol = {"protocol": "train/dev"}
    train, train_fixed = parse_examples(train_set, version_2, f"{data_cfg.source} train")
    evals, eval_fixed = parse_examples(eval_set, version_2, f"{data_cfg.source} dev")
    protocol["answer_starts_repaired"] = train_fixed + eval_fixed
    if data_cfg.max_train_examples:
        train = train[: data_cfg.max_train_examples]
    if data_cfg.max_eval_examples:
        evals = evals[: data_cfg.max_eval_examples]
    return SquadSplits(train, evals, protocol)
