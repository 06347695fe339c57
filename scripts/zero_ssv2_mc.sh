#!/usr/bin/env bash
# Zero-shot SSV2 multiple choice (TVTSv2 Table 3) for any method and size: the model is the config.
# Paper, top-1: B/16 42.1, H/14 48.4.
#
#   CONFIG=configs/tvtsv2-b16.json CKPT=pretrained/TVTSv2_B_16.pth DATA=data/SSV2 bash scripts/zero_ssv2_mc.sh
# Results in $OUT (default results/<protocol>/<dataset>/<checkpoint name>).
# META: the authors' meta_data folder (ssv2/mc/val.jsonl). Runs on every visible GPU (videos sharded).
set -euo pipefail
exec "$(dirname "$0")/downstream_launch.sh" zero_ssv2_mc \
    --config "${CONFIG:-configs/tvtsv2-b16.json}" --checkpoint "${CKPT:-pretrained/TVTSv2_B_16.pth}" \
    --data-dir "${DATA:-data/SSV2}" --meta-dir "${META:-meta_data}" \
    ${OUT:+--output-dir "$OUT"} "$@"
