#!/usr/bin/env bash
# Fine-tune a TVTS checkpoint on Kinetics-400. TVTS released no script for it: this is VideoMAE's ViT-B recipe
# (64 GPUs x batch 8, 16 frames at stride 4, 5 x 3 test views). DATA holds train.csv/val.csv/test.csv lists.
#
#   CKPT=checkpoints/TVTS_yt_pt.pth DATA=data/k400 bash scripts/ft_k400.sh [extra flags]
set -euo pipefail
exec "$(dirname "$0")/downstream_launch.sh" run_class_finetuning \
    --finetune "${CKPT:-checkpoints/TVTS_yt_pt.pth}" --data_set Kinetics-400 --nb_classes 400 \
    --data_path "${DATA:-data/k400}" --output_dir "${OUT:-results/downstream/ft_k400}" \
    --batch_size 8 --num_frames 16 --sampling_rate 4 --input_size 224 --short_side_size 224 \
    --opt adamw --opt_betas 0.9 0.999 --lr 1e-3 --weight_decay 0.05 --layer_decay 0.75 \
    --warmup_epochs 5 --epochs 100 --save_ckpt_freq 10 --test_num_segment 5 --test_num_crop 3 "$@"
