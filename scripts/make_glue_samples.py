"""Regenerate the GLUE samples shipped in bert_repro/data/samples/glue from a full GLUE copy.

Usage: python scripts/make_glue_samples.py /path/to/glue
Rows are drawn at random (seed 0) and kept verbatim, header lines included.
"""

import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bert_repro" / "data" / "samples" / "glue"
# task dir -> rows per split; the SST-2 sample is the embedded default's training data.
SIZES = {
    "SST-2": {"train.tsv": 2000, "dev.tsv": 872, "test.tsv": 64},
    "CoLA": {"train.tsv": 256, "dev.tsv": 128, "test.tsv": 32},
    "MRPC": {"train.tsv": 256, "dev.tsv": 128, "test.tsv": 32},
    "STS-B": {"train.tsv": 256, "dev.tsv": 128, "test.tsv": 32},
    "RTE": {"train.tsv": 256, "dev.tsv": 128, "test.tsv": 32},
    "WNLI": {"train.tsv": 256, "dev.tsv": 71, "test.tsv": 32},
}
NO_HEADER = {("CoLA", "train.tsv"), ("CoLA", "dev.tsv")}


def main(glue_root: Path) -> None:
    rng = random.Random(0)
    for task, files in SIZES.items():
        (OUT / task).mkdir(parents=True, exist_ok=True)
        for name, n in files.items():
            lines = (glue_root / task / name).read_text(encoding="utf-8").splitlines(keepends=True)
            header, body = ([], lines) if (task, name) in NO_HEADER else (lines[:1], lines[1:])
            keep = sorted(rng.sample(range(len(body)), min(n, len(body))))
            (OUT / task / name).write_text(
                "".join(header + [body[i] for i in keep]), encoding="utf-8"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
