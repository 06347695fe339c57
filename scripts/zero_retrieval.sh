#!/usr/bin/env bash
# Zero-shot text-to-video retrieval (TVTSv2 Table 2) for any method and size: the model is the config.
# Paper, t2v R@1/5/10/MdR, B/16: MSR-VTT 35.9/61.2/71.3/3.0, DiDeMo 33.4/60.1/70.6/3.0, LSMDC 16.9/31.5/38.2/22.0.
#
#   CONFIG=configs/tvtsv2-b16.json CKPT=pretrained/TVTSv2_B_16.pth DATASET=msrvtt DATA=data/msrvtt \
#       bash scripts/zero_retrieval.sh [--postprocess dsl]
# Results in $OUT (default results/<protocol>/<dataset>/<checkpoint name>).
# DATASET: msrvtt | didemo | lsmdc; META: the authors' meta_data folder. Runs on every visible GPU (videos sharded).
set -euo pipefail
DATASET=${DATASET:-msrvtt}
exec "$(dirname "$0")/downstream_launch.sh" zero_retrieval \
    --config "${CONFIG:-configs/tvtsv2-b16.json}" --checkpoint "${CKPT:-pretrained/TVTSv2_B_16.pth}" \
    --dataset "$DATASET" --data-dir "${DATA:-data/$DATASET}" --meta-dir "${META:-meta_data}" \
    ${OUT:+--output-dir "$OUT"} "$@"
