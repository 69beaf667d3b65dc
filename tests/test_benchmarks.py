"""The benchmark's pure pieces: FLOP counting, statistics, the ratio table, options, inputs.

The benchmark itself never runs here (it takes minutes even with --quick); the `slow` test at the
end runs `python -m benchmarks --quick` end to end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import PARTS, default_ref_python, parse_args
from benchmarks.flops import Shape, matmul_flops, step_flops
from benchmarks.inputs import pack_encoded, unpack_encoded
from benchmarks.part_b_finetune import max_train_examples
from benchmarks.stats import invert, summarize, time_calls
from benchmarks.table import Row, better, fmt, markdown, single
from bert_repro.data.batching import Encoded
from bert_repro.pretraining.synthetic import MASK, pretraining_batch

REPO = Path(__file__).resolve().parents[1]
BERT_MINI = Shape(
    layers=4, hidden=256, intermediate=1024, vocab=30522, batch=32, seq_len=128, predictions=20
)


def test_step_flops_match_a_hand_count_for_bert_mini():
    tokens, masked = 32 * 128, 32 * 20
    # per token and layer: Q, K, V, output (4 x 256x256) and the FFN (2 x 256x1024), 2 FLOPs/MAC
    encoder = 4 * tokens * 2 * (4 * 256 * 256 + 2 * 256 * 1024)
    attention = 4 * tokens * 2 * (128 * 256 + 128 * 256)  # QK^T and probs @ V
    mlm = masked * 2 * (256 * 256 + 256 * 30522)  # transform + decoder, masked positions only
    nsp = 32 * 2 * (256 * 256 + 256 * 2)
    counts = step_flops(BERT_MINI)
    assert counts["encoder_matmuls"] == 3 * encoder
    assert counts["attention"] == 3 * attention
    assert counts["mlm_head"] == 3 * mlm
    assert counts["nsp_head"] == 3 * nsp
    assert counts["total"] == 3 * (encoder + attention + mlm + nsp) == 114_020_548_608
    # the stack findings' "~114 GFLOP with the masked-only head" for this shape
    assert round(counts["total"] / 1e9) == 114


def test_full_mlm_head_and_no_nsp_change_only_their_terms():
    full = step_flops(Shape(**{**BERT_MINI.__dict__, "predictions": 128, "nsp": False}))
    masked = step_flops(BERT_MINI)
    assert full["mlm_head"] == masked["mlm_head"] * 128 // 20
    assert full["nsp_head"] == 0
    assert full["encoder_matmuls"] == masked["encoder_matmuls"]
    assert matmul_flops(2048) == 2 * 2048**3


def test_time_calls_warms_up_then_times_each_repetition():
    calls = []
    samples = time_calls(lambda: calls.append(1), warmup=2, reps=3)
    assert len(calls) == 5 and len(samples) == 3 and all(s >= 0 for s in samples)


def test_summary_and_its_rate():
    summary = summarize([0.3, 0.1, 0.2], scale=1000)
    assert summary["median"] == pytest.approx(200) and summary["n"] == 3
    assert (summary["min"], summary["max"]) == pytest.approx((100, 300))
    rate = invert(summarize([3.0, 1.0, 2.0]), 6.0)  # the fastest run is the highest rate
    assert (rate["median"], rate["min"], rate["max"]) == pytest.approx((3.0, 2.0, 6.0))
    assert summarize([2.0])["q1"] == summarize([2.0])["q3"] == 2.0


def _row(ours: float, ref: float, higher: bool | None, n: int = 1) -> Row:
    stat = (lambda v: {**single(v), "n": n, "min": v * 0.9, "max": v * 1.1}) if n > 1 else single
    return Row("a", "bert_mini", "ms/step", stat(ours), "PyTorch", stat(ref), higher, "x")


def test_ratio_and_which_side_is_better():
    assert _row(50, 100, False).ratio == pytest.approx(0.5)
    assert better(_row(50, 100, False)) == "ours"  # half the time
    assert better(_row(50, 100, True)) == "ref"  # half the throughput
    assert better(_row(101, 100, False)) == "tie"
    assert better(_row(50, 100, None)) == ""
    assert _row(50, 100, False).to_dict()["better"] == "ours"


def test_markdown_table_formats_values_and_ratio():
    text = markdown([_row(1257.3, 841.2, False, n=5), _row(88.07, 87.5, True)])
    lines = text.splitlines()
    assert lines[0].startswith("| part | case | metric | ours | reference | ref | ours/ref |")
    assert len(lines) == 4
    assert "| 1,257 [1,132–1,383] |" in lines[2] and "| 1.49 | ref | x |" in lines[2]
    assert "| 88.1 |" in lines[3] and "| 1.01 | tie |" in lines[3]
    assert (fmt(0.01234), fmt(12.345), fmt(123456.7)) == ("0.0123", "12.3", "123,457")


def test_parse_args_quick_full_and_explicit_values():
    full = parse_args(["--ref-python", "py"])
    assert full.models == ["bert_tiny", "bert_mini", "bert_small"] and (
        full.batch,
        full.seq_len,
    ) == (32, 128)
    assert (full.predictions, full.reps, full.matmul_size) == (20, 5, 2048)
    assert full.only == list(PARTS) and full.max_train_examples is None
    quick = parse_args(["--quick", "--ref-python", "py", "--reps", "3", "--only", "d,a"])
    assert quick.models == ["bert_tiny"] and quick.max_train_examples == 64
    assert quick.reps == 3  # an explicit value beats the quick default
    assert quick.only == ["a", "d"]  # run in part order


def test_parse_args_rejects_unknown_parts_and_a_missing_reference(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--only", "a,z", "--ref-python", "py"])
    assert "unknown part(s) z" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--only", "b", "--ref-python", ""])
    assert "make bench-venv" in capsys.readouterr().err
    assert parse_args(["--only", "c,d", "--ref-python", ""]).only == ["c", "d"]


def test_max_train_examples_per_task():
    assert max_train_examples("sst2", None) == 2000
    assert max_train_examples("mrpc", None) is None  # all of MRPC's 3,668
    assert max_train_examples("mrpc", 0) is None
    assert max_train_examples("sst2", 64) == 64


def test_agreement_points_are_the_catalogues_points():
    """The HF side trains the very point of ours it is compared with: same config, same run id."""
    from benchmarks.agreement import point_config
    from bert_repro.config import run_id
    from bert_repro.experiments.catalogue import expand

    run = next(r for r in expand("table1_glue", "cpu").runs if r.placeholders.get("task") == "rte")
    point = next(p for p in run.points if p.values == {"optim.lr": 3e-5, "seed": 2})
    cfg = point_config("rte", 3e-5, 2, "cpu", [])
    assert point.run_dir.name == f"glue_rte-{run_id(cfg)}"
    assert cfg.trainer.group_by_length and cfg.trainer.epochs == 3 and cfg.data.source == "local"


def test_pretraining_batch_masks_distinct_inner_positions_deterministically():
    batch = pretraining_batch(batch=4, seq_len=32, predictions=5, vocab=30522, seed=0)
    positions = batch["masked_lm_positions"]
    assert positions.shape == (4, 5) and batch["input_ids"].shape == (4, 32)
    assert all(len(set(row)) == 5 and list(row) == sorted(row) for row in positions)
    assert positions.min() >= 1 and positions.max() <= 30 and not (positions == 16).any()
    assert (np.take_along_axis(batch["input_ids"], positions, 1) == MASK).all()
    assert (batch["masked_lm_ids"] != MASK).all()
    again = pretraining_batch(batch=4, seq_len=32, predictions=5, vocab=30522, seed=0)
    assert all((again[k] == v).all() for k, v in batch.items())


def test_encoded_examples_round_trip_through_flat_arrays():
    data = Encoded(
        [np.array([101, 7, 102]), np.array([101, 102])],
        [np.array([0, 0, 0]), np.array([0, 1])],
        np.array([1, 0]),
    )
    back = unpack_encoded(pack_encoded("train", data), "train")
    assert [x.tolist() for x in back.input_ids] == [[101, 7, 102], [101, 102]]
    assert [x.tolist() for x in back.token_type_ids] == [[0, 0, 0], [0, 1]]
    assert back.labels.tolist() == [1, 0]


@pytest.mark.slow
def test_quick_benchmark_runs_end_to_end(tmp_path, shared_data):
    if not default_ref_python():
        pytest.skip("no PyTorch reference venv (make bench-venv)")
    command = [sys.executable, "-m", "benchmarks", "--quick", f"--out-dir={tmp_path}"]
    subprocess.run(command, cwd=REPO, check=True, timeout=1800)
    (report,) = tmp_path.glob("*-quick.md")
    table = report.read_text()
    for part in PARTS:
        assert f"| {part} |" in table


def test_every_profiled_block_runs_forward_and_backward_on_our_side(framework):
    """Part (e)'s blocks at tiny shapes: a finite loss and a gradient for every input."""
    from benchmarks.ops import PER_LAYER, op_cases
    from bert_repro import backend

    shape = Shape(
        layers=1, hidden=16, intermediate=64, vocab=50, batch=2, seq_len=8, predictions=3, heads=2
    )
    cases = op_cases(framework, shape)
    assert set(PER_LAYER) <= set(cases)
    for name, (params, loss) in cases.items():
        value, grads = backend.value_and_grad(loss, params)()
        assert np.isfinite(float(value)), name
        assert [g.shape for g in grads] == [tuple(p.shape) for p in params], name


PREDICT_ORDER_CHECK = """
import tempfile, numpy as np, torch
from pathlib import Path
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizerFast,
                          DataCollatorWithPadding, Trainer, TrainingArguments)
from benchmarks.hf_trainer import _rows, predict_in_order

words = [f"w{i}" for i in range(20)]
out = Path(tempfile.mkdtemp())
(out / "vocab.txt").write_text("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]))
tokenizer = BertTokenizerFast(str(out / "vocab.txt"))
torch.manual_seed(0)
config = BertConfig(vocab_size=25, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, num_labels=2)
model = BertForSequenceClassification(config).eval()
texts = [" ".join(words[: 1 + i % 19]) for i in range(24)]  # lengths rise, then wrap
dev = _rows(tokenizer, {"text_a": texts, "text_b": None, "labels": None}, 32, with_labels=False)
args = TrainingArguments(output_dir=str(out), group_by_length=True, per_device_eval_batch_size=4,
                         use_cpu=True, report_to=[], disable_tqdm=True)
trainer = Trainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer))
logits = predict_in_order(trainer, dev)
with torch.no_grad():
    expected = np.concatenate([model(**tokenizer(t, return_tensors="pt")).logits.numpy()
                               for t in texts])
assert trainer.args.group_by_length, "training's grouping must be restored"
np.testing.assert_allclose(logits, expected, atol=1e-5)
print("in order")
"""


def test_hf_predictions_come_back_in_dev_order():
    """Trainer length-groups predict() too when group_by_length is on (transformers#33514); the
    agreement study's HF side must score each dev example against its own label."""
    ref_python = default_ref_python()
    if not ref_python:
        pytest.skip("no PyTorch reference venv (make bench-venv)")
    run = [ref_python, "-c", PREDICT_ORDER_CHECK]
    done = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("in order")


def test_profile_names_each_fused_kernel_from_the_launch_log(tmp_path):
    from benchmarks.profile_step import kernel_times

    # the profiler's launch list (one line per launch) and its per-op summary, as MindSpore writes
    (tmp_path / "cpu_framework_0.txt").write_text(
        "Custom;Custom-op0;1;input_1:[4, 8];\n;;1;\nCustom;Custom-op1;1;\nCustom;Custom-op0;1;\n"
    )
    header = "op_side,op_type,op_name,full_op_name,op_occurrences,op_total_time(ms)"
    (tmp_path / "cpu_op_detail_info_0.csv").write_text(
        f"{header}\nHost,Custom,Custom-op0,Default/Custom-op0,2,4.0\n"
        "Host,Custom,Custom-op1,Default/Custom-op1,1,1.0\nHost,MatMul,MatMul-op3,x,1,3.0\n"
    )
    log = ["GeluForward", "GeluBackward", "GeluForward"]
    assert kernel_times(tmp_path, 1, log) == [
        ("Custom GeluForward", 2, 4.0),
        ("MatMul", 1, 3.0),
        ("Custom GeluBackward", 1, 1.0),
    ]
    # a log that does not match the launches names nothing: the kernels stay one row
    assert kernel_times(tmp_path, 2, log[:1])[0] == ("Custom", 1.5, 2.5)
