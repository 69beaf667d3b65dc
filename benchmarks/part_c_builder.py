"""Part (c): the pre-training data builder's throughput against the fast tokenizer alone on the
same sentences, and its peak memory on the corpus once and read several times over (flat memory:
the builder streams, holding a bounded window of documents)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.harness import REPO, Context
from benchmarks.table import Row, single


def _child(ctx: Context, mode: str, copies: int) -> dict[str, Any]:
    args = ctx.args
    out = ctx.work / f"builder-{mode}-{copies}x.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.builder",
        mode,
        f"--root={args.corpus_root}",
        "--corpus",
        *args.corpus,
        f"--copies={copies}",
        f"--seq-len={args.seq_len}",
        f"--seed={args.seed}",
        f"--work={ctx.work}",
        f"--out={out}",
    ]
    print(f"  data builder: {mode}, corpus x{copies}", flush=True)
    # the project's runs tokenize single-threaded (backend.configure_hub): measure it that way
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
    subprocess.run(command, cwd=REPO, env=env, check=True)
    return json.loads(out.read_text())


def builder_part(ctx: Context) -> None:
    """(c) corpus tokens/s of builder vs tokenizer, and builder peak RSS at 1x vs Nx corpus."""
    copies = ctx.args.rss_copies
    tokenizer_only = _child(ctx, "tokenize", 1)
    once = _child(ctx, "build", 1)
    repeated = _child(ctx, "build", copies)
    tokens = tokenizer_only["tokens"]
    ctx.rows.append(
        Row(
            "c",
            f"corpus x1 ({tokens:,} WordPiece tokens)",
            "tokens/s",
            single(tokens / once["seconds"]),
            "BertTokenizerFast alone, same sentences",
            single(tokens / tokenizer_only["seconds"]),
            True,
            f"builder reads, splits, pairs, masks, writes shards; {once['instances']:,} instances",
        )
    )
    ctx.rows.append(
        Row(
            "c",
            f"builder peak RSS, corpus x{copies} vs x1",
            "MB",
            single(repeated["peak_rss_mb"]),
            "same builder, corpus x1",
            single(once["peak_rss_mb"]),
            None,
            f"{once['baseline_rss_mb']:.0f} MB after imports; "
            f"x{copies} at {tokens * copies / repeated['seconds']:,.0f} tokens/s",
        )
    )
    ctx.raw["data_builder"] = {"tokenizer": tokenizer_only, "build_1x": once, "build_nx": repeated}
