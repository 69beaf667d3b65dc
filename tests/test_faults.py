"""Faults a user meets: kills at chosen moments, two launches at once, bad inputs and settings.

Each test reproduces one case of issue 20 (the closing note's table): the partial state a kill
leaves is made on disk or by stopping a save at each of its steps; bad inputs get one line
naming the fix and leave nothing behind. The random-kill loop is in test_fault_injection.py.
"""

import gzip
import itertools
import json
import os
import re
import shutil
import signal
import stat
from pathlib import Path

import numpy as np
import pytest

from bert_repro.cli import _run_in
from bert_repro.data.glue import load_local
from bert_repro.data.io import file_mode, write_json_atomic
from bert_repro.data.squad import read_squad_file
from bert_repro.errors import UserError
from bert_repro.results.record import store_path
from bert_repro.runs import exclusive, finished_record, remove_if_stub
from bert_repro.tasks.glue import get_task
from bert_repro.training import checkpoint
from bert_repro.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from bert_repro.validate import check_settings
from tests.conftest import TINY, compose
from tests.test_cli import run


def _save(run_dir: Path, step: int, epoch: int) -> Path:
    weights = {"w": np.full(3, step, np.float32)}
    return save_checkpoint(run_dir, step, weights, {"m": np.zeros(2)}, {"epoch": epoch}, keep=2)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even `except Exception` blocks)."""


def test_replacing_a_checkpoint_is_atomic_at_every_instant(tmp_path, monkeypatch):
    """Case 1: the save of a step already saved (as the end of an epoch did), stopped at each of
    its file-system operations in turn: the latest complete checkpoint always loads, and the
    relaunch's save clears what the stopped one left."""
    ops = {"count": 0, "stop": None}

    def counted(function, partly=None):
        def wrapper(*args, **kwargs):
            ops["count"] += 1
            if ops["count"] == ops["stop"]:
                if partly is not None:
                    partly(*args)
                raise Killed
            return function(*args, **kwargs)

        return wrapper

    def delete_one_file(path, *_):
        """A kill during a delete: one file of the tree is gone, the rest is not."""
        files = sorted(f for f in Path(path).rglob("*") if f.is_file())
        if files:
            files[0].unlink()

    def write_half(_, path, *__):
        Path(path).write_bytes(b"\0" * 10)  # a kill during a write

    monkeypatch.setattr(checkpoint, "save_file", counted(checkpoint.save_file, write_half))
    monkeypatch.setattr(checkpoint.shutil, "rmtree", counted(shutil.rmtree, delete_one_file))
    monkeypatch.setattr(Path, "rename", counted(Path.rename))
    monkeypatch.setattr(Path, "write_text", counted(Path.write_text))
    for stop in itertools.count(1):
        run_dir = tmp_path / f"stop{stop}"
        _save(run_dir, 2, epoch=0)
        _save(run_dir, 4, epoch=0)
        ops.update(count=0, stop=stop)
        try:
            _save(run_dir, 4, epoch=1)  # step 4 again, the epoch advanced
        except Killed:
            pass
        else:
            break
        finally:
            ops["stop"] = None
        weights, _, state = load_checkpoint(latest_checkpoint(run_dir))
        assert (weights["w"][0], state["epoch"]) in ((2, 0), (4, 0), (4, 1)), stop
        _save(run_dir, 4, epoch=1)  # the relaunch
        kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert kept == ["step_00000002", "step_00000004"], stop
        assert load_checkpoint(latest_checkpoint(run_dir))[2] == {"epoch": 1}
    assert stop > 6  # every write, rename and delete of the save was a stopping point


def test_resume_skips_a_half_deleted_checkpoint(tmp_path):
    """Case 1, the state older code left: `step_4` without its optimizer file."""
    _save(tmp_path, 2, epoch=0)
    half = _save(tmp_path, 4, epoch=1)
    (half / "optimizer.safetensors").unlink()
    assert latest_checkpoint(tmp_path).name == "step_00000002"
    assert load_checkpoint(latest_checkpoint(tmp_path))[0]["w"][0] == 2


def test_records_and_checkpoints_are_readable_by_others(tmp_path):
    """Case 9: mkstemp and safetensors create 0600 files; the committed results are 0644."""
    write_json_atomic(tmp_path / "record.json", {"a": 1})
    files = [tmp_path / "record.json", *(_save(tmp_path, 2, epoch=0)).iterdir()]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == file_mode(), path


def _finished_run(tmp_path: Path) -> tuple[object, Path, dict]:
    cfg = compose([*TINY, "task=rte"], tmp_path)
    run_dir = tmp_path / "runs" / "rte" / "run"
    record = {"run_id": "abc", "task": "rte", "status": "complete", "metrics": {"accuracy": 50.0}}
    write_json_atomic(run_dir / "record.json", record)  # a kill came before the store's copy
    return cfg, run_dir, record


def test_relaunch_writes_the_record_a_kill_kept_from_the_results_store(tmp_path, capsys):
    """Case 2: record in the run dir, none in the store; the relaunch writes it, once."""
    cfg, run_dir, record = _finished_run(tmp_path)
    _run_in(cfg, run_dir)
    stored = store_path(record, tmp_path / "results")
    assert json.loads(stored.read_text()) == record
    assert "already finished" in capsys.readouterr().out
    _run_in(cfg, run_dir)
    assert "results store was missing" not in capsys.readouterr().out
    assert list((tmp_path / "results").rglob("*.json")) == [stored]


def test_a_corrupt_run_dir_record_is_not_a_traceback(tmp_path, capsys):
    """Case 2: a damaged record.json counts as unfinished (the relaunch writes it again)."""
    _, run_dir, _ = _finished_run(tmp_path)
    (run_dir / "record.json").write_text('{"run_id": "ab')
    assert finished_record(run_dir) is None
    assert "record.json is unreadable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.epochs=-1"], "trainer.epochs=-1 must be at least 1"),
        (["optim.lr=-1e-3"], "optim.lr=-0.001 must be positive"),
        (["data.max_train_examples=0"], "data.max_train_examples=0 must be at least 1, or null"),
        (["trainer.batch_size=0"], "trainer.batch_size=0 must be at least 1"),
        (["task=squad_v1"], "task=squad_v1 runs in stage squad, not finetune: use its experiment"),
        (["+experiment=squad_v1", "stage=finetune"], "+experiment=squad_v1"),
        (["task=rte", "stage=squad"], "+experiment=glue_rte"),
    ],
)
def test_settings_that_would_record_a_wrong_result_are_refused(overrides, message, tmp_path):
    """Cases 3 and 5: settings checked before the run dir exists (preflight) or a sweep point
    starts (run_stage)."""
    with pytest.raises(UserError, match=re.escape(message)):
        check_settings(compose(overrides, tmp_path))


def test_every_preset_passes_the_settings_check(tmp_path):
    from bert_repro.config import group_options

    for name in group_options("experiment"):
        check_settings(compose([f"+experiment={name}"], tmp_path))


def test_bad_settings_fail_before_anything_is_written(tmp_path):
    """Cases 3 and 8 through run.py: one line, exit 2, no run dir."""
    result = run(["run.py", "trainer.epochs=-1", f"paths.runs={tmp_path}/runs"])
    assert result.returncode == 2
    assert result.stderr.strip() == "error: trainer.epochs=-1 must be at least 1"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no examples (empty, or a header only)"),
        (b"index\tsentence1\tsentence2\tlabel\n", "holds no examples"),
        (
            b"index\ta\tb\tlabel\n0\tok\tok\tentailment\n1\tcaf\xe9\tb\tentailment\n",
            ":3: not UTF-8",
        ),
    ],
)
def test_bad_tsv_is_one_line_naming_file_and_line(content, message, tmp_path):
    """Case 5: empty or header-only train.tsv, a non-UTF-8 byte."""
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        load_local(get_task("rte"), tmp_path, "train")
    assert str(tmp_path / "RTE" / "train.tsv") in str(caught.value)


def test_truncated_json_gz_is_one_line(tmp_path):
    """Case 5: a SQuAD download cut short."""
    whole = gzip.compress(json.dumps({"data": [{"title": "t" * 5000}]}).encode())
    path = tmp_path / "dev-v1.1.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match=r"truncated or damaged .*download it again"):
        read_squad_file(path)


def test_launch_that_fails_before_training_leaves_no_run_dir(tmp_path):
    """Cases 5 and 8 through run.py: an empty train.tsv fails in the stage, after Hydra made
    the run dir; the one-line error remains and the stub goes."""
    glue = tmp_path / "glue"
    (glue / "RTE").mkdir(parents=True)
    (glue / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n")
    result = run(
        ["run.py", *TINY, "task=rte", "data=local", f"data.root={glue}", f"paths.runs={tmp_path}/r"]
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "holds no examples" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in (tmp_path / "r").rglob("*") if p.is_file()]


def test_stub_removal_keeps_any_run_that_trained(tmp_path):
    (tmp_path / "stub" / ".hydra").mkdir(parents=True)
    (tmp_path / "stub" / "run.log").write_text("log lines")
    (tmp_path / "stub" / "train_log.jsonl").touch()
    assert remove_if_stub(tmp_path / "stub") and not (tmp_path / "stub").exists()
    _save(tmp_path / "trained", 2, epoch=0)
    (tmp_path / "trained" / "run.log").touch()
    assert not remove_if_stub(tmp_path / "trained")


def test_second_launch_of_a_running_config_says_already_running(tmp_path):
    """Case 4: this process holds the run dir's lock as a running launch does; the same
    command launched again stops at once, naming our pid, and touches nothing."""

    overrides = [*TINY, "task=rte", "trainer.max_steps=1"]
    run_dir = Path(compose(overrides, tmp_path, with_hydra=True).hydra.run.dir)
    paths = [f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/results"]
    with exclusive(run_dir):
        result = run(["run.py", *overrides, *paths])
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: already running (pid {os.getpid()}) in {run_dir}; wait for it, or stop that "
        "process"
    )
    assert not (run_dir / "checkpoints").exists() and not (tmp_path / "results").exists()


def test_the_lock_dies_with_its_holder(tmp_path):
    """A SIGKILLed run leaves no stale lock: the kernel drops flock with the process."""
    pid = os.fork()
    if pid == 0:
        with exclusive(tmp_path):
            os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    os.waitpid(pid, os.WUNTRACED)
    with pytest.raises(UserError, match=f"already running \\(pid {pid}\\)"), exclusive(tmp_path):
        pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with exclusive(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


def test_sweep_with_a_failed_point_exits_non_zero(tmp_path):
    """Case 7 (and 8, 9): the bad point fails with one line and leaves no run dir, the good one
    is recorded with files others can read, and the sweep exits non-zero."""
    sweep = [
        "model=bert_tiny",
        "model.pretrained=null",
        "task=rte",
        "data.max_train_examples=16",
        "data.max_eval_examples=16",
        "trainer.max_steps=2",
        "trainer.batch_size=8,0",  # preflight checks the first value; the second fails later
    ]
    paths = [f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/results"]
    result = run(["run.py", "-m", *sweep, *paths])
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: trainer.batch_size=0 must be at least 1" in result.stderr
    assert "a sweep point failed" in result.stderr and "Traceback" not in result.stderr
    (record,) = (tmp_path / "results" / "runs" / "rte").glob("*.json")
    (run_dir,) = (tmp_path / "runs" / "rte").iterdir()  # the failed point left nothing
    written = [record, run_dir / "record.json", *(run_dir / "checkpoint").iterdir()]
    written += [p for p in (run_dir / "checkpoints").rglob("*") if p.is_file()]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == file_mode(), path


def test_nan_loss_stops_with_one_line_and_keeps_the_last_finite_checkpoint(
    tmp_path, tiny_glue, framework, monkeypatch
):
    """Case 6: from the 4th step on the loss is NaN. The checkpoint after step 3 holds the
    weights that gave it, so it goes; step 2's is kept and named."""
    from bert_repro.stages.finetune import run as finetune
    from bert_repro.training import loop

    real = loop.make_train_step

    def diverging(*args, **kwargs):
        optimizer, step = real(*args, **kwargs)
        calls = itertools.count(1)

        def nan_from_the_fourth(batch, lr):
            loss, grad_norm = step(batch, lr)
            return (float("nan") if next(calls) >= 4 else loss), grad_norm

        return optimizer, nan_from_the_fourth

    monkeypatch.setattr(loop, "make_train_step", diverging)
    data = ["task=rte", "data=local", f"data.root={tiny_glue}"]
    every_step = ["trainer.checkpoint_every=1", "trainer.keep_checkpoints=9"]
    cfg = compose([*TINY, *data, *every_step], tmp_path)
    kept = tmp_path / "run" / "checkpoints" / "step_00000002"
    message = rf"loss became nan at step 4 \(kept {kept}, the last checkpoint with a finite loss\)"
    with pytest.raises(UserError, match=message):
        finetune(cfg, tmp_path / "run")
    assert sorted(p.name for p in kept.parent.iterdir()) == ["step_00000001", "step_00000002"]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, framework) -> Path:
    """A saved fine-tuned BERT-tiny (uncased tokenizer), as `predict` and model.pretrained read."""
    from bert_repro.models.factory import build_classifier, save_finetuned

    root = tmp_path_factory.mktemp("weights")
    model, tokenizer, _ = build_classifier(compose(TINY, root).model, 2, {0: "a", 1: "b"})
    return save_finetuned(model, tokenizer, root, "sst2")


def _copy(weights: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(weights, tmp_path / "copy"))


def test_weights_that_disagree_with_their_config_are_one_line(tiny_weights, tmp_path):
    """Case 5: embedding rows that disagree with config.json (a size-mismatch RuntimeError)."""
    from bert_repro.models.factory import build_classifier

    copy = _copy(tiny_weights, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))
    model_cfg = compose([*TINY, f"model.pretrained={copy}"], tmp_path).model
    with pytest.raises(UserError, match=r"its weights do not fit its config\.json .*size mismatch"):
        build_classifier(model_cfg, 2, {0: "a", 1: "b"})


def test_truncated_weights_are_one_line_for_training_and_predict(tiny_weights, tmp_path):
    """Case 5: a model.safetensors cut short, given to predict or as model.pretrained."""
    from bert_repro.models.factory import load_finetuned, resolve_pretrained

    copy = _copy(tiny_weights, tmp_path)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for load in (lambda: load_finetuned(str(copy)), lambda: resolve_pretrained(str(copy))):
        with pytest.raises(UserError, match=f"{weights} is truncated or damaged"):
            load()


def test_cased_vocabulary_on_uncased_weights_is_refused(tiny_weights, tmp_path):
    """Case 3: a cased tokenizer over weights trained uncased used to run without a word."""
    from bert_repro.models.factory import SHIPPED_VOCAB, load_tokenizer

    cased = tmp_path / "bert-base-cased-vocab.txt"
    shutil.copy(SHIPPED_VOCAB, cased)
    overrides = [*TINY, f"model.pretrained={tiny_weights}", f"model.tokenizer={cased}"]
    model_cfg = compose(overrides, tmp_path).model
    with pytest.raises(UserError, match=r"is cased but model\.pretrained=.* was trained uncased"):
        load_tokenizer(model_cfg, str(tiny_weights))


def test_vocab_mismatch_on_pretrained_weights_does_not_suggest_vocab_size():
    """Case 5: model.vocab_size is not applied to pretrained weights: the fix is the tokenizer."""
    from bert_repro.models.factory import check_vocab

    class Tok:
        def __len__(self):
            return 30522

    with pytest.raises(UserError, match="rows; use the model's own tokenizer") as caught:
        check_vocab(Tok(), 1000, pretrained=True)
    assert "vocab_size" not in str(caught.value)
