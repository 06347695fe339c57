#!/usr/bin/env bash
# Zero-shot video-to-video retrieval on the Something-Something-v2 validation list (paper: R@1/5/10 =
# 14.7/38.4/50.5). Runs on one GPU or many (the videos are sharded and the features gathered).
#
#   CKPT=checkpoints/TVTS_yt_pt.pth DATA=data/ssv2 bash scripts/zero_ssv2.sh [--val_sampling center]
set -euo pipefail
exec "$(dirname "$0")/downstream_launch.sh" run_class_zero \
    --finetune "${CKPT:-checkpoints/TVTS_yt_pt.pth}" --data_set SSV2 --nb_classes 174 \
    --data_path "${DATA:-data/ssv2}" --output_dir "${OUT:-results/downstream/zero_ssv2}" \
    --batch_size 12 --num_frames 16 --input_size 224 --short_side_size 224 "$@"
