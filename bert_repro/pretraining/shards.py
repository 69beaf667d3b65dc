"""Build pre-training instances into on-disk shards, and read them back.

Each shard is an ``.npz`` of fixed-shape arrays (one row per instance, padded to
``max_seq_length`` / ``max_predictions_per_seq``); ``manifest.json`` lists the shards with the
config, seed, inputs and label totals. Files are written to a temporary name and renamed, so a
crashed build never leaves a half-written shard under a final name, and they carry no
timestamps, so the same inputs and seed give byte-identical output.

Instances are shuffled within each shard (Google shuffles the whole corpus, which a streaming
builder cannot); training should also shuffle the shard order and read several shards at once.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bert_repro.data.corpus import Layout, iter_file_documents, resolve_files
from bert_repro.pretraining.instances import (
    NOT_NEXT,
    PretrainingDataConfig,
    PretrainingInstance,
    iter_instances,
)
from bert_repro.pretraining.vocab import VocabInfo

if TYPE_CHECKING:  # transformers loads after mindnlp (backend.load_framework)
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

FORMAT = "bert-repro-pretraining-shards/1"
MANIFEST = "manifest.json"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamp: deterministic bytes


def feature_spec(config: PretrainingDataConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-instance shape and dtype of every array in a shard."""
    seq, preds = (config.max_seq_length,), (config.max_predictions_per_seq,)
    return {
        "input_ids": (seq, "int32"),
        "token_type_ids": (seq, "int32"),
        "attention_mask": (seq, "int32"),
        "masked_lm_positions": (preds, "int32"),
        "masked_lm_ids": (preds, "int32"),
        "masked_lm_weights": (preds, "float32"),
        "next_sentence_label": ((), "int32"),
        "doc_a": ((), "int32"),
        "doc_b": ((), "int32"),
    }


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        try:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``np.load``-compatible, deflated ``.npz`` without timestamps (``np.savez`` adds them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            archive.writestr(info, member.getvalue(), zipfile.ZIP_DEFLATED, compresslevel=1)
    return buffer.getvalue()


class _ShardWriter:
    """Pads instances into preallocated arrays and writes a shard each ``instances_per_shard``."""

    def __init__(
        self,
        out_dir: Path,
        config: PretrainingDataConfig,
        pad_id: int,
        rng: random.Random,
        prefix: str = "shard",
    ) -> None:
        self.out_dir = out_dir
        self.config = config
        self.pad_id = pad_id
        self.rng = rng
        self.prefix = prefix
        capacity = config.instances_per_shard
        self._rows = {
            name: np.zeros((capacity, *shape), dtype=dtype)
            for name, (shape, dtype) in feature_spec(config).items()
        }
        self._count = 0
        self.shards: list[dict[str, Any]] = []
        self.totals = {"instances": 0, "tokens": 0, "masked_lm_predictions": 0, "not_next": 0}

    def add(self, instance: PretrainingInstance) -> None:
        length, predictions = len(instance.input_ids), len(instance.masked_lm_positions)
        if length > self.config.max_seq_length or predictions > self.config.max_predictions_per_seq:
            raise ValueError(f"instance of {length} tokens / {predictions} predictions too large")
        row, rows = self._count, self._rows
        rows["input_ids"][row] = self.pad_id
        rows["input_ids"][row, :length] = instance.input_ids
        rows["token_type_ids"][row] = 0
        rows["token_type_ids"][row, :length] = instance.token_type_ids
        rows["attention_mask"][row] = 0
        rows["attention_mask"][row, :length] = 1
        for name in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
            rows[name][row] = 0
        rows["masked_lm_positions"][row, :predictions] = instance.masked_lm_positions
        rows["masked_lm_ids"][row, :predictions] = instance.masked_lm_ids
        rows["masked_lm_weights"][row, :predictions] = 1.0
        rows["next_sentence_label"][row] = instance.next_sentence_label
        rows["doc_a"][row] = instance.doc_a
        rows["doc_b"][row] = instance.doc_b
        self._count += 1
        self.totals["instances"] += 1
        self.totals["tokens"] += length
        self.totals["masked_lm_predictions"] += predictions
        self.totals["not_next"] += instance.next_sentence_label == NOT_NEXT
        if self._count == self.config.instances_per_shard:
            self._flush()

    def close(self) -> list[dict[str, Any]]:
        """Write the last, partial shard; returns the manifest entries of all shards."""
        if self._count:
            self._flush()
        return self.shards

    def _flush(self) -> None:
        order = list(range(self._count))
        self.rng.shuffle(order)
        name = f"{self.prefix}-{len(self.shards):05d}.npz"
        _atomic_write(self.out_dir / name, _npz_bytes({k: v[order] for k, v in self._rows.items()}))
        self.shards.append({"file": name, "num_instances": self._count})
        logger.info("wrote %s (%d instances)", name, self._count)
        self._count = 0


def write_pretraining_shards(
    document_source: Callable[[], Iterable[Sequence[str]]],
    out_dir: str | Path,
    tokenizer: PreTrainedTokenizerFast,
    config: PretrainingDataConfig,
    seed: int,
    source_info: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build shards from any document stream; ``document_source()`` is called once per dupe.

    ``dupe_factor`` passes each re-read the stream (nothing is cached) and draw new pairings and
    masks from the one seeded rng. Returns the manifest, which is also written to ``out_dir``.
    ``source_info`` (JSON-able) records where the documents came from.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists() and not overwrite:
        raise FileExistsError(f"{manifest_path} exists; pass overwrite=True to rebuild")
    previous = load_manifest(out_dir)["shards"] if manifest_path.exists() else []
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    vocab = VocabInfo.from_tokenizer(tokenizer)
    writer = _ShardWriter(out_dir, config, vocab.pad_id, rng)
    for dupe in range(config.dupe_factor):
        logger.info("pass %d/%d", dupe + 1, config.dupe_factor)
        for instance in iter_instances(document_source(), tokenizer, config, rng, vocab):
            writer.add(instance)
    shards = writer.close()
    manifest = {
        "format": FORMAT,
        "seed": seed,
        "config": asdict(config),
        "source": dict(source_info or {}),
        "tokenizer": {
            "vocab_size": len(tokenizer),
            "vocab_sha256": vocab.fingerprint,
            "lowercase": bool(getattr(tokenizer, "do_lower_case", False)),
        },
        "features": {
            name: {"shape": list(shape), "dtype": dtype}
            for name, (shape, dtype) in feature_spec(config).items()
        },
        "shards": shards,
        "totals": writer.totals,
    }
    _atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=True).encode())
    current = {entry["file"] for entry in shards}
    for entry in previous:  # shards of a larger earlier build that this one did not overwrite
        if entry["file"] not in current:
            (out_dir / entry["file"]).unlink(missing_ok=True)
    return manifest


def build_pretraining_shards(
    files: Sequence[str | Path],
    out_dir: str | Path,
    tokenizer: PreTrainedTokenizerFast,
    config: PretrainingDataConfig,
    seed: int,
    layout: Layout = "lines",
    sentence_split: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build shards from local text files (directories expand to their ``*.txt``).

    ``layout`` and ``sentence_split`` are as in
    :func:`bert_repro.data.corpus.read_documents`. To parallelise, give each builder a
    :func:`~bert_repro.data.corpus.select_file_shard` of the files, its own
    ``out_dir`` and its own seed.
    """
    paths = resolve_files(files)
    return write_pretraining_shards(
        lambda: iter_file_documents(paths, layout, sentence_split),
        out_dir,
        tokenizer,
        config,
        seed,
        source_info={
            "files": [str(p) for p in paths],
            "layout": layout,
            "sentence_split": sentence_split,
        },
        overwrite=overwrite,
    )


def load_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of a built shard directory."""
    return json.loads((Path(out_dir) / MANIFEST).read_text())


def read_shard(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of one shard, loaded into memory."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def iter_shards(out_dir: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """The shards of a build in manifest order, one at a time."""
    for entry in load_manifest(out_dir)["shards"]:
        yield read_shard(Path(out_dir) / entry["file"])
