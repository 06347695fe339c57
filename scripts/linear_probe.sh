#!/usr/bin/env bash
# Linear probe on frozen video embeddings (TVTSv2 Table 4; the protocol is ours, docs/faithfulness.md).
# Paper, top-1, B/16: HMDB-51 64.7, UCF-101 90.0, K400 70.1; H/14: 65.7, 91.8, 73.1.
#
#   CONFIG=configs/tvtsv2-b16.json CKPT=pretrained/TVTSv2_B_16.pth DATASET=ucf101 DATA=data/ucf101 \
#       bash scripts/linear_probe.sh [--split 1]
# Results (and the feature cache) in $OUT (default results/linear_probe/<dataset>_split<k>/<checkpoint name>).
set -euo pipefail
DATASET=${DATASET:-ucf101}
exec "$(dirname "$0")/downstream_launch.sh" linear_probe \
    --config "${CONFIG:-configs/tvtsv2-b16.json}" --checkpoint "${CKPT:-pretrained/TVTSv2_B_16.pth}" \
    --dataset "$DATASET" --data-dir "${DATA:-data/$DATASET}" --meta-dir "${META:-meta_data}" \
    ${OUT:+--output-dir "$OUT"} "$@"
