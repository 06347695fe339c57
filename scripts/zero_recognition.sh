#!/usr/bin/env bash
# Zero-shot action recognition (TVTSv2 Table 3) for any method and size: the model is the config.
# Paper, top-1, B/16: HMDB-51 50.4, UCF-101 69.8, K400 54.3; H/14: 52.1, 78.0, 59.6.
#
#   CONFIG=configs/tvtsv2-b16.json CKPT=pretrained/TVTSv2_B_16.pth DATASET=hmdb51 DATA=data/hmdb51 \
#       bash scripts/zero_recognition.sh [--split 2] [--templates-file prompts.json]
# Results in $OUT (default results/<protocol>/<dataset>/<checkpoint name>).
# DATASET: hmdb51 | ucf101 | k400; META: the authors' meta_data folder. Runs on every visible GPU (videos sharded).
set -euo pipefail
DATASET=${DATASET:-hmdb51}
exec "$(dirname "$0")/downstream_launch.sh" zero_recognition \
    --config "${CONFIG:-configs/tvtsv2-b16.json}" --checkpoint "${CKPT:-pretrained/TVTSv2_B_16.pth}" \
    --dataset "$DATASET" --data-dir "${DATA:-data/$DATASET}" --meta-dir "${META:-meta_data}" \
    ${OUT:+--output-dir "$OUT"} "$@"
