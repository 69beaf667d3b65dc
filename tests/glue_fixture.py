"""Tiny GLUE directories in the original layout, written by tests (MNLI/QQP/QNLI train are not
available offline, so every task is exercised on files like these)."""

from pathlib import Path

from bert_repro.tasks.glue import GLUE_TASKS, LocalSplit


def _row(layout: LocalSplit, i: int, task_name: str, labels: tuple[str, ...], width: int) -> str:
    cells = [str(i)] * width
    cells[layout.text_a] = f'{task_name} sentence number {i} with "quotes" and words'
    if layout.text_b is not None:
        cells[layout.text_b] = f"second segment {i} of {task_name}"
    if layout.label is not None:
        cells[layout.label] = labels[i % len(labels)] if labels else f"{(i % 6) * 0.8:.3f}"
    return "\t".join(cells)


def write_tiny_glue(root: Path, n: int = 8) -> Path:
    """Write n rows per split for all nine tasks; labels cycle through the label set."""
    for task in GLUE_TASKS.values():
        layouts = {"train": task.local_train, **task.local_dev, **task.local_test}
        for layout in layouts.values():
            width = layout.min_columns
            lines = [_row(layout, i, task.name, task.labels, width) for i in range(n)]
            header = ["\t".join(f"col{j}" for j in range(width))] if layout.header else []
            path = root / task.glue_dir / layout.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    return root
