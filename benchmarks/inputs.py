"""Inputs both sides read from one `.npz`: identical token ids, masks and labels by construction.

The pre-training batch itself is `bert_repro.pretraining.synthetic.pretraining_batch`; this
module (numpy only, imported by the reference side too) packs fine-tuning examples."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from bert_repro.data.batching import Encoded


def pack_encoded(name: str, data: Encoded) -> dict[str, np.ndarray]:
    """Ragged tokenized examples as flat arrays (for `np.savez`) under `name.*`."""
    return {
        f"{name}.ids": np.concatenate(data.input_ids),
        f"{name}.types": np.concatenate(data.token_type_ids),
        f"{name}.offsets": np.concatenate([[0], np.cumsum(data.lengths)]),
        f"{name}.labels": data.labels,
    }


def unpack_encoded(arrays: Mapping[str, np.ndarray], name: str) -> Encoded:
    """The inverse of `pack_encoded`."""
    bounds = arrays[f"{name}.offsets"]
    cut = list(pairwise(bounds))
    return Encoded(
        [arrays[f"{name}.ids"][a:b] for a, b in cut],
        [arrays[f"{name}.types"][a:b] for a, b in cut],
        arrays[f"{name}.labels"],
    )
