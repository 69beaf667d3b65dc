#!/usr/bin/env bash
# Data-parallel training on N devices with MindSpore's launcher: scripts/msrun.sh N <run.py args>
#   scripts/msrun.sh 2 +experiment=glue_mrpc                # fine-tuning (also squad_*, swag)
#   scripts/msrun.sh 8 +experiment=pretrain_bert_base ...   # pre-training: rank 0 builds shards
# Each of the N workers takes 1/N of every batch; the global batch (trainer.batch_size) is
# unchanged. Rank 0 alone checkpoints and records; relaunching the command resumes.
# MSRUN_PORT (default 8118) and MSRUN_LOG_DIR (default runs/msrun_logs) override.
set -euo pipefail
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/msrun.sh N_DEVICES <run.py arguments>" >&2
    exit 2
fi
workers="$1"
shift
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$repo/.venv/bin:$PATH"  # msrun starts every worker with the `python` on PATH
exec msrun --worker_num="$workers" --local_worker_num="$workers" \
    --master_port="${MSRUN_PORT:-8118}" --log_dir="${MSRUN_LOG_DIR:-runs/msrun_logs}" \
    --join=True "$repo/run.py" "$@"
