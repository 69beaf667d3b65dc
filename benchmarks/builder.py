"""One measurement of part (c) in a fresh interpreter, so the peak RSS it reports is its own:

    python -m benchmarks.builder {tokenize|build} --root R --corpus L:P ... --out r.json

`tokenize` times the fast tokenizer alone over the corpus sentences (held in memory first);
`build` times the project's streaming builder (documents -> masked instances -> shards) over the
corpus read `--copies` times. Neither imports mindnlp.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omegaconf import OmegaConf

from bert_repro.config import ModelConfig, ObjectiveConfig
from bert_repro.models.factory import load_tokenizer
from bert_repro.pretraining.objectives import corpus_documents, corpus_sources, data_config
from bert_repro.pretraining.shards import write_pretraining_shards

TOKENIZER_BATCH = 1000  # sentences per call, as one would feed a fast tokenizer


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not getrusage: Linux carries ru_maxrss over fork and exec, so a child of the benchmark would
    report the parent's peak (mindnlp loaded, ~600 MB) instead of its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status (Linux only)")


def _documents(root: str, corpus: list[str], copies: int) -> Iterator[list[str]]:
    sources = corpus_sources(SimpleNamespace(root=root, corpus=corpus))
    return chain.from_iterable(corpus_documents(sources, 0, False) for _ in range(copies))


def tokenize(args: argparse.Namespace, tokenizer: Any) -> dict[str, Any]:
    sentences = [s for document in _documents(args.root, args.corpus, 1) for s in document]
    started, tokens = time.perf_counter(), 0
    for i in range(0, len(sentences), TOKENIZER_BATCH):
        batch = sentences[i : i + TOKENIZER_BATCH]
        tokens += sum(map(len, tokenizer(batch, add_special_tokens=False)["input_ids"]))
    return {"seconds": time.perf_counter() - started, "tokens": tokens}


def build(args: argparse.Namespace, tokenizer: Any) -> dict[str, Any]:
    config = data_config(OmegaConf.structured(ObjectiveConfig), args.seq_len, dupe_factor=1)
    started = time.perf_counter()
    manifest = write_pretraining_shards(
        lambda: _documents(args.root, args.corpus, args.copies),
        Path(args.work) / f"shards-{args.copies}x",
        tokenizer,
        config,
        args.seed,
        overwrite=True,
    )
    return {
        "seconds": time.perf_counter() - started,
        "instances": manifest["totals"]["instances"],
        "instance_tokens": manifest["totals"]["tokens"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("tokenize", "build"))
    parser.add_argument("--root", required=True)
    parser.add_argument("--corpus", nargs="+", required=True)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    tokenizer = load_tokenizer(OmegaConf.structured(ModelConfig), None)  # the shipped vocab
    baseline = peak_rss_mb()
    result = (tokenize if args.mode == "tokenize" else build)(args, tokenizer)
    result.update(baseline_rss_mb=baseline, peak_rss_mb=peak_rss_mb(), copies=args.copies)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
