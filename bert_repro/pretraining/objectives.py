"""Pre-training objectives at training time: the run's shards, its batches, held-out metrics.

The builder (``instances.py``) already shapes each objective's examples; this module turns shards
into what :class:`bert_repro.models.heads.BertForPretraining` takes:

- ``mlm_nsp`` and ``mlm``: the masked positions, their original ids and weights (the MLM head runs
  only there), plus the IsNext/NotNext label for ``mlm_nsp``;
- ``ltr``: every position predicts the next token, so positions are ``0..n-2``, the targets are
  ``input_ids`` shifted left and padding gets weight 0 (the causal mask lives in the model).

Batches are a pure function of (seed, batch index), like the GLUE epochs, so the loop's position
in its epoch is the data position a resumed run continues from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro import backend
from bert_repro.data.corpus import LAYOUTS, iter_file_documents, resolve_files
from bert_repro.errors import UserError
from bert_repro.pretraining.instances import MaskingMix, PretrainingDataConfig
from bert_repro.pretraining.shards import (
    MANIFEST,
    load_manifest,
    read_shard,
    write_pretraining_shards,
)
from bert_repro.pretraining.vocab import VocabInfo

Batch = dict[str, np.ndarray]
# Shards shuffled together: a pass visits shards in random order, this many at a time, rows
# shuffled across them (Google interleaves 4 input files through a shuffle buffer).
SHARDS_IN_MEMORY = 8
_FEATURES = (
    "input_ids",
    "token_type_ids",
    "attention_mask",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_label",
)


@dataclass(frozen=True)
class Objective:
    """What an objective asks of the model: an NSP head, a causal attention mask."""

    name: str
    nsp: bool
    causal: bool


OBJECTIVES = {
    "mlm_nsp": Objective("mlm_nsp", nsp=True, causal=False),
    "mlm": Objective("mlm", nsp=False, causal=False),
    "ltr": Objective("ltr", nsp=False, causal=True),
}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective '{name}'; choose one of: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def data_config(objective_cfg: Any, max_seq_length: int, dupe_factor: int) -> PretrainingDataConfig:
    """The builder's settings for one phase (sequence length) of a run."""
    return PretrainingDataConfig(
        max_seq_length=max_seq_length,
        max_predictions_per_seq=objective_cfg.max_predictions_per_seq,
        masked_lm_prob=objective_cfg.masked_lm_prob,
        dupe_factor=dupe_factor,
        short_seq_prob=objective_cfg.short_seq_prob,
        random_next_prob=objective_cfg.random_next_prob,
        masking=MaskingMix(
            objective_cfg.mask_token, objective_cfg.random_token, objective_cfg.keep_token
        ),
        whole_word_masking=objective_cfg.whole_word_masking,
        objective=get_objective(objective_cfg.name).name,
    )


def corpus_sources(data_cfg: Any) -> list[tuple[str, list[Path]]]:
    """``data.corpus`` entries ("layout:path under data.root") as (layout, files)."""
    if not data_cfg.corpus:
        raise UserError("pre-training needs text: data=corpus (or data.corpus=[file:books,...])")
    root = Path(data_cfg.root or ".").expanduser()
    sources = []
    for entry in data_cfg.corpus:
        layout, sep, rel = str(entry).partition(":")
        if not sep or layout not in LAYOUTS:
            raise UserError(
                f"data.corpus entry '{entry}' must be <layout>:<path>; layouts {LAYOUTS}"
            )
        path = root / rel
        if not path.exists():
            raise UserError(f"corpus path not found: {path} (set data.root=/path/to/corpus)")
        sources.append((layout, resolve_files([path])))
    return sources


def corpus_documents(
    sources: Sequence[tuple[str, Sequence[Path]]], heldout_every: int, heldout: bool
) -> Iterator[list[str]]:
    """The training documents, or the held-out ones: every ``heldout_every``-th in stream order."""
    index = 0
    for layout, files in sources:
        for document in iter_file_documents(files, layout):  # type: ignore[arg-type]
            is_heldout = heldout_every > 0 and index % heldout_every == heldout_every - 1
            index += 1
            if is_heldout == heldout:
                yield document


def prepare_shards(
    data_cfg: Any,
    config: PretrainingDataConfig,
    tokenizer: Any,
    seed: int,
    cache_root: Path,
) -> dict[str, Path]:
    """Build (or find) the training and held-out shards of one phase.

    The build is deterministic, so it is cached under a hash of everything it depends on and
    shared by every run with the same data (an lr sweep builds once). The held-out documents get
    one masking pass: a fixed evaluation set.
    """
    sources = corpus_sources(data_cfg)
    inputs = [(layout, [(str(f), f.stat().st_size) for f in files]) for layout, files in sources]
    dirs = {}
    for split in ("train", "heldout"):
        split_config = config if split == "train" else replace(config, dupe_factor=1)
        key = {
            "split": split,
            "inputs": inputs,
            "heldout_every": data_cfg.heldout_every,
            "config": asdict(split_config),
            "seed": seed,
            "vocab": VocabInfo.from_tokenizer(tokenizer).fingerprint,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        out_dir = cache_root / f"{split}-{config.objective}-{config.max_seq_length}-{digest}"
        if not (out_dir / MANIFEST).is_file():
            print(f"building {split} shards in {out_dir}")
            write_pretraining_shards(
                lambda split=split: corpus_documents(
                    sources, data_cfg.heldout_every, split == "heldout"
                ),
                out_dir,
                tokenizer,
                split_config,
                seed,
                source_info={"inputs": inputs, "split": split},
                overwrite=True,
            )
        if not load_manifest(out_dir)["shards"]:
            raise UserError(f"no {split} instances in {data_cfg.corpus}: check data.heldout_every")
        dirs[split] = out_dir
    return dirs


POSITION_OFFSETS_STREAM = 1
"""Draws position offsets apart from the shard order's (seed, pass) random streams."""


class ShardStream:
    """Endless fixed-size batches over a shard directory: pass after pass, each reshuffled.

    Pass ``p`` visits the shards in an order drawn from ``(seed, p)``, ``SHARDS_IN_MEMORY`` at a
    time, with their rows shuffled together; a pass drops its last incomplete batch. Batch ``i``
    is therefore a pure function of ``(seed, i)``.
    """

    def __init__(self, shard_dir: Path, batch_size: int, seed: int) -> None:
        entries = load_manifest(shard_dir)["shards"]
        self.files = [shard_dir / entry["file"] for entry in entries]
        self.counts = np.array([entry["num_instances"] for entry in entries], dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_pass = int(self.counts.sum()) // batch_size
        if self.batches_per_pass == 0:
            raise UserError(
                f"{shard_dir} holds {self.counts.sum()} instances, fewer than one batch of "
                f"{batch_size}: lower trainer.batch_size or add text"
            )
        self._loaded: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def _groups(self, pass_index: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, pass_index]).permutation(len(self.files))
        return np.split(order, range(SHARDS_IN_MEMORY, len(order), SHARDS_IN_MEMORY))

    def _group_rows(self, pass_index: int, group: int) -> dict[str, np.ndarray]:
        key = (pass_index, group)
        if key not in self._loaded:
            shards = [read_shard(self.files[i]) for i in self._groups(pass_index)[group]]
            rows = {name: np.concatenate([s[name] for s in shards]) for name in _FEATURES}
            rng = np.random.default_rng([self.seed, pass_index, group])
            order = rng.permutation(len(rows["input_ids"]))
            while len(self._loaded) >= 2:  # a batch spans at most two groups
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = {name: values[order] for name, values in rows.items()}
        return self._loaded[key]

    def rows(self, index: int) -> dict[str, np.ndarray]:
        """The ``batch_size`` instances of batch ``index``."""
        pass_index, k = divmod(index, self.batches_per_pass)
        start, stop = k * self.batch_size, (k + 1) * self.batch_size
        parts: list[dict[str, np.ndarray]] = []
        offset = 0
        for group, shards in enumerate(self._groups(pass_index)):
            size = int(self.counts[shards].sum())
            if offset < stop and start < offset + size:
                rows = self._group_rows(pass_index, group)
                lo, hi = max(start - offset, 0), min(stop - offset, size)
                parts.append({name: values[lo:hi] for name, values in rows.items()})
            offset += size
        return {name: np.concatenate([p[name] for p in parts]) for name in _FEATURES}


class StreamBatches(Sequence[Batch]):
    """Batches ``start..stop-1`` of a stream as model inputs, built on demand (sliceable).

    With ``position_span`` (S) each row of length L is numbered from an offset drawn from
    ``(seed, batch index)``: uniform over -(L-1)..S-1, clipped to 0..S-L, so that every position
    of a longer later phase is trained (pretrain.phase1_position_offsets), the first and last L
    included: each position lies in at least L of the S+L-1 equally likely windows.
    """

    def __init__(
        self,
        stream: ShardStream,
        objective: Objective,
        start: int,
        stop: int,
        position_span: int | None = None,
    ) -> None:
        self.stream, self.objective = stream, objective
        self.start, self.stop = start, stop
        self.position_span = position_span

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, item):  # type: ignore[override]
        if isinstance(item, slice):
            span = range(self.start, self.stop)[item]
            if span.step != 1:
                raise ValueError("only contiguous slices")
            return StreamBatches(
                self.stream, self.objective, span.start, span.stop, self.position_span
            )
        return self._batch(range(self.start, self.stop)[item])

    def __iter__(self) -> Iterator[Batch]:
        for index in range(self.start, self.stop):
            yield self._batch(index)

    def _batch(self, index: int) -> Batch:
        batch = model_batch(self.stream.rows(index), self.objective)
        if self.position_span is not None:
            rows, length = batch["input_ids"].shape
            rng = np.random.default_rng([self.stream.seed, index, POSITION_OFFSETS_STREAM])
            drawn = rng.integers(1 - length, self.position_span, size=(rows, 1))
            offsets = np.clip(drawn, 0, self.position_span - length)
            batch["position_ids"] = offsets + np.arange(length, dtype=np.int64)
        return batch


def model_batch(rows: dict[str, np.ndarray], objective: Objective) -> Batch:
    """Shard rows -> forward inputs, cut to the batch's longest sequence (less work on CPU)."""
    length = int(rows["attention_mask"].sum(1).max())
    batch = {
        "input_ids": rows["input_ids"][:, :length].astype(np.int64),
        "token_type_ids": rows["token_type_ids"][:, :length].astype(np.int64),
        "attention_mask": rows["attention_mask"][:, :length].astype(np.int64),
    }
    if objective.causal:  # position t predicts token t+1
        count = len(batch["input_ids"])
        batch["masked_lm_positions"] = np.tile(np.arange(length - 1, dtype=np.int64), (count, 1))
        batch["masked_lm_ids"] = batch["input_ids"][:, 1:].copy()
        batch["masked_lm_weights"] = batch["attention_mask"][:, 1:].astype(np.float32)
    else:
        batch["masked_lm_positions"] = rows["masked_lm_positions"].astype(np.int64)
        batch["masked_lm_ids"] = rows["masked_lm_ids"].astype(np.int64)
        batch["masked_lm_weights"] = rows["masked_lm_weights"].astype(np.float32)
    # The batch's prediction count spread over its rows. A slice of the rows (a micro-batch, a
    # data-parallel rank's share) divides its token-loss sum by its rows' part of that count, so
    # the slices' row-weighted losses add up to the whole batch's mean over its predictions.
    weights = batch["masked_lm_weights"]
    batch["masked_lm_count_per_row"] = np.full(
        len(weights), weights.sum() / len(weights), np.float32
    )
    if objective.nsp:
        batch["next_sentence_label"] = rows["next_sentence_label"].astype(np.int64)
    return batch


def heldout_batches(
    shard_dir: Path, objective: Objective, rows_per_batch: int, limit: int | None
) -> list[Batch]:
    """The held-out set in stored order (the first ``limit`` instances), as model inputs."""
    shards, count = [], 0
    for entry in load_manifest(shard_dir)["shards"]:
        if limit is not None and count >= limit:
            break
        shards.append(read_shard(shard_dir / entry["file"]))
        count += entry["num_instances"]
    rows = {name: np.concatenate([s[name] for s in shards])[:limit] for name in _FEATURES}
    if objective.causal:  # every position is predicted: as many logits per batch as MLM's 20
        rows_per_batch = max(1, rows_per_batch * 20 // rows["input_ids"].shape[1])
    count = len(rows["input_ids"])
    return [
        model_batch({k: v[i : i + rows_per_batch] for k, v in rows.items()}, objective)
        for i in range(0, count, rows_per_batch)
    ]


def _targets_and_shown(
    batches: Iterable[Batch], objective: Objective
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every weighted target, and (MLM only) the token the model sees where it predicts it."""
    targets, visible = [], []
    for batch in batches:
        weighted = batch["masked_lm_weights"] > 0
        targets.append(batch["masked_lm_ids"][weighted])
        if not objective.causal:
            shown = np.take_along_axis(batch["input_ids"], batch["masked_lm_positions"], 1)
            visible.append(shown[weighted])
    return np.concatenate(targets), np.concatenate(visible) if visible else None


def context_free_accuracy(batches: Iterable[Batch], objective: Objective, mask_id: int) -> float:
    """Held-out accuracy (%) of the best predictor that ignores context: under MLM it returns a
    visible token itself (a [MASK] hides the 80%; the 10% kept are right) and the set's most
    frequent target at a [MASK]; under ``ltr`` the most frequent target everywhere.

    BERT's first plateau sits below this line (one token for every position). A model at it may
    still read some context (`context_free_loss` shows it), but not enough to change its top
    guesses; accuracy above it says context does. The majority target is the evaluated set's
    own, as the GLUE majority baselines are.
    """
    correct = context_free_correct(batches, objective, mask_id)
    return 100.0 * float(correct.mean()) if len(correct) else math.nan


def context_free_correct(
    batches: Iterable[Batch], objective: Objective, mask_id: int
) -> np.ndarray:
    """`context_free_accuracy`'s verdict on each weighted target, in batch order."""
    target, shown = _targets_and_shown(batches, objective)
    if not len(target):
        return np.zeros(0, bool)
    correct = target == np.bincount(target).argmax()
    if shown is not None:  # what the model sees where it predicts
        correct = np.where(shown != mask_id, shown == target, correct)
    return correct


def context_free_loss(
    train: Iterable[Batch],
    heldout: Iterable[Batch],
    objective: Objective,
    mask_id: int,
    vocab_size: int,
) -> float:
    """Held-out cross-entropy (nats per target) of the best predictor that ignores context,
    fitted on ``train``: the train targets' frequencies (add-1/2) at a [MASK] (everywhere under
    ``ltr``); at a visible token, that token with the train share of visible targets it was,
    the frequencies with the rest.

    The accuracy line moves only once context changes a top guess, which a small model's first
    uses of context (topic, a neighbour's hint) rarely do; a held-out loss below this line is the
    earlier sign that the encoder reads context.
    """
    fit_target, fit_shown = _targets_and_shown(train, objective)
    frequency = np.bincount(fit_target, minlength=vocab_size) + 0.5
    frequency /= frequency.sum()
    target, shown = _targets_and_shown(heldout, objective)
    if not len(target):
        return math.nan
    probability = frequency[target]
    if shown is not None:
        copied = fit_shown != mask_id
        share = float((fit_shown[copied] == fit_target[copied]).mean()) if copied.any() else 0.0
        visible = shown != mask_id
        mix = (1 - share) * probability + share * (shown == target)
        probability = np.where(visible, mix, probability)
    return float(-np.log(probability).mean())


def evaluate(model: Any, batches: Iterable[Batch], objective: Objective) -> dict[str, float]:
    """Held-out LM loss, accuracy and perplexity (Table 6's "LM (ppl)"), and NSP accuracy.

    Sums over every predicted token of the set, not a mean of batch means. For ``ltr`` the
    "mlm" numbers are the next-token loss, accuracy and perplexity.
    """
    model.eval()
    loss_sum = correct = weight = 0.0
    nsp_correct = nsp_loss_sum = nsp_count = 0.0
    with backend.no_grad():
        for batch in batches:
            out = model(**{k: backend.to_tensor(v) for k, v in batch.items()})
            weights = batch["masked_lm_weights"]
            losses = backend.to_numpy(out.token_losses)
            predictions = backend.to_numpy(out.token_predictions)
            loss_sum += float((losses * weights).sum())
            correct += float(((predictions == batch["masked_lm_ids"]) * weights).sum())
            weight += float(weights.sum())
            if objective.nsp:
                logits = backend.to_numpy(out.nsp_logits).astype(np.float64)
                labels = batch["next_sentence_label"]
                log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
                nsp_loss_sum -= float(log_probs[np.arange(len(labels)), labels].sum())
                nsp_correct += float((logits.argmax(1) == labels).sum())
                nsp_count += len(labels)
    mlm_loss = loss_sum / max(weight, 1.0)
    metrics = {
        "mlm_loss": mlm_loss,
        "mlm_accuracy": 100.0 * correct / max(weight, 1.0),
        "perplexity": math.exp(min(mlm_loss, 50.0)),
    }
    if objective.nsp:
        metrics["nsp_loss"] = nsp_loss_sum / max(nsp_count, 1.0)
        metrics["nsp_accuracy"] = 100.0 * nsp_correct / max(nsp_count, 1.0)
    return metrics
