#!/usr/bin/env bash
# The README's main job, on CPU: make the scripted synthetic corpus (once), pretrain the tiny TVTS on it, and show
# how transcript-sort accuracy and text-video retrieval moved from the untrained to the trained model.
# Extra arguments go to train.py (e.g. trainer.epochs=50).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=data/synthetic
if [ ! -f "$DATA/meta_data/prepare_report.json" ]; then
    echo "== making the synthetic corpus in $DATA"
    python -m data_loader.synthetic --out "$DATA"
    echo "== checking it and caching the transcript alignments"
    python -m data_loader.prepare yttemporal --data-dir "$DATA/YTTemporal" --meta-dir "$DATA/meta_data" \
        --val-fraction 0.1
fi
echo "== pretraining the tiny model of configs/demo-cpu.json on the CPU"
OUT=$(mktemp)
python train.py -c configs/demo-cpu.json "$@" | tee "$OUT"
RUN=$(sed -n "s/^run directory: //p" "$OUT" | tail -n 1)
echo "== before and after pretraining (validation clips of the synthetic corpus)"
python -m trainer.report "$RUN"
