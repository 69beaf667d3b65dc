"""The nine GLUE tasks: the single place that knows each task's columns, labels and metrics.

Like `task_to_keys` in Hugging Face's run_glue.py, but also carrying what the BERT paper reports
(section 4.1, Table 1): F1 for MRPC/QQP, Spearman for STS-B, Matthews for CoLA, accuracy elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocalSplit:
    """How one split is laid out in the original GLUE TSV distribution."""

    file: str
    header: bool
    text_a: int  # column index of the first sentence
    text_b: int | None  # column index of the second sentence (None for single-sentence tasks)
    label: int | None  # column index of the label (None for unlabelled test files)
    index: int | None = None  # column index of the example id written to submissions

    @property
    def min_columns(self) -> int:
        """How many tab-separated columns a row needs."""
        used = (self.text_a, self.text_b, self.label, self.index)
        return max(c for c in used if c is not None) + 1


@dataclass(frozen=True)
class GlueTask:
    """Everything task-specific that the data, model and metric code need."""

    name: str
    glue_dir: str  # folder name in the GLUE distribution
    hub_config: str  # config name of the `nyu-mll/glue` hub dataset
    hub_columns: tuple[str, ...]
    labels: tuple[str, ...]  # label strings in the order of the model's output units
    metrics: tuple[str, ...]
    headline: str  # the metric the paper reports for this task
    dev_splits: tuple[str, ...] = ("dev",)
    local_train: LocalSplit | None = None
    local_dev: dict[str, LocalSplit] = field(default_factory=dict)
    local_test: dict[str, LocalSplit] = field(default_factory=dict)
    # GLUE leaderboard submission file stem per test split (e.g. MNLI-m, MNLI-mm)
    submission_names: dict[str, str] = field(default_factory=dict)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return len(self.labels) or 1

    @property
    def is_pair(self) -> bool:
        return len(self.hub_columns) == 2


def _pair(file: str, a: int, b: int, label: int | None, index: int | None = 0) -> LocalSplit:
    return LocalSplit(file=file, header=True, text_a=a, text_b=b, label=label, index=index)


def _single(file: str, a: int, label: int | None, header: bool = True, index=None) -> LocalSplit:
    return LocalSplit(file=file, header=header, text_a=a, text_b=None, label=label, index=index)


NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")
BINARY = ("0", "1")

GLUE_TASKS: dict[str, GlueTask] = {
    "cola": GlueTask(
        name="cola",
        glue_dir="CoLA",
        hub_config="cola",
        hub_columns=("sentence",),
        labels=BINARY,
        metrics=("matthews_corr", "accuracy"),
        headline="matthews_corr",
        # CoLA's train and dev files have no header: source, label, original label, sentence.
        local_train=_single("train.tsv", a=3, label=1, header=False),
        local_dev={"dev": _single("dev.tsv", a=3, label=1, header=False)},
        local_test={"test": _single("test.tsv", a=1, label=None, index=0)},
        submission_names={"test": "CoLA"},
    ),
    "sst2": GlueTask(
        name="sst2",
        glue_dir="SST-2",
        hub_config="sst2",
        hub_columns=("sentence",),
        labels=BINARY,
        metrics=("accuracy",),
        headline="accuracy",
        local_train=_single("train.tsv", a=0, label=1),
        local_dev={"dev": _single("dev.tsv", a=0, label=1)},
        local_test={"test": _single("test.tsv", a=1, label=None, index=0)},
        submission_names={"test": "SST-2"},
    ),
    "mrpc": GlueTask(
        name="mrpc",
        glue_dir="MRPC",
        hub_config="mrpc",
        hub_columns=("sentence1", "sentence2"),
        labels=BINARY,
        metrics=("f1", "accuracy"),
        headline="f1",
        local_train=_pair("train.tsv", 3, 4, label=0, index=None),
        local_dev={"dev": _pair("dev.tsv", 3, 4, label=0, index=None)},
        local_test={"test": _pair("test.tsv", 3, 4, label=None, index=0)},
        submission_names={"test": "MRPC"},
    ),
    "stsb": GlueTask(
        name="stsb",
        glue_dir="STS-B",
        hub_config="stsb",
        hub_columns=("sentence1", "sentence2"),
        labels=(),
        metrics=("spearman", "pearson"),
        headline="spearman",
        local_train=_pair("train.tsv", 7, 8, label=9),
        local_dev={"dev": _pair("dev.tsv", 7, 8, label=9)},
        local_test={"test": _pair("test.tsv", 7, 8, label=None)},
        submission_names={"test": "STS-B"},
    ),
    "qqp": GlueTask(
        name="qqp",
        glue_dir="QQP",
        hub_config="qqp",
        hub_columns=("question1", "question2"),
        labels=BINARY,
        metrics=("f1", "accuracy"),
        headline="f1",
        local_train=_pair("train.tsv", 3, 4, label=5),
        local_dev={"dev": _pair("dev.tsv", 3, 4, label=5)},
        local_test={"test": _pair("test.tsv", 1, 2, label=None)},
        submission_names={"test": "QQP"},
    ),
    "mnli": GlueTask(
        name="mnli",
        glue_dir="MNLI",
        hub_config="mnli",
        hub_columns=("premise", "hypothesis"),
        labels=NLI3,
        metrics=("accuracy",),
        headline="accuracy",
        dev_splits=("dev_matched", "dev_mismatched"),
        local_train=_pair("train.tsv", 8, 9, label=11),
        local_dev={
            "dev_matched": _pair("dev_matched.tsv", 8, 9, label=15),
            "dev_mismatched": _pair("dev_mismatched.tsv", 8, 9, label=15),
        },
        local_test={
            "test_matched": _pair("test_matched.tsv", 8, 9, label=None),
            "test_mismatched": _pair("test_mismatched.tsv", 8, 9, label=None),
        },
        submission_names={"test_matched": "MNLI-m", "test_mismatched": "MNLI-mm"},
    ),
    "qnli": GlueTask(
        name="qnli",
        glue_dir="QNLI",
        hub_config="qnli",
        hub_columns=("question", "sentence"),
        labels=NLI2,
        metrics=("accuracy",),
        headline="accuracy",
        local_train=_pair("train.tsv", 1, 2, label=3),
        local_dev={"dev": _pair("dev.tsv", 1, 2, label=3)},
        local_test={"test": _pair("test.tsv", 1, 2, label=None)},
        submission_names={"test": "QNLI"},
    ),
    "rte": GlueTask(
        name="rte",
        glue_dir="RTE",
        hub_config="rte",
        hub_columns=("sentence1", "sentence2"),
        labels=NLI2,
        metrics=("accuracy",),
        headline="accuracy",
        local_train=_pair("train.tsv", 1, 2, label=3),
        local_dev={"dev": _pair("dev.tsv", 1, 2, label=3)},
        local_test={"test": _pair("test.tsv", 1, 2, label=None)},
        submission_names={"test": "RTE"},
    ),
    "wnli": GlueTask(
        name="wnli",
        glue_dir="WNLI",
        hub_config="wnli",
        hub_columns=("sentence1", "sentence2"),
        labels=BINARY,
        metrics=("accuracy",),
        headline="accuracy",
        local_train=_pair("train.tsv", 1, 2, label=3),
        local_dev={"dev": _pair("dev.tsv", 1, 2, label=3)},
        local_test={"test": _pair("test.tsv", 1, 2, label=None)},
        submission_names={"test": "WNLI"},
    ),
}


def get_task(name: str) -> GlueTask:
    """Look a task up by name, failing with the list of valid names."""
    try:
        return GLUE_TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task '{name}': choose one of {', '.join(GLUE_TASKS)}") from None
