#!/usr/bin/env bash
# Fine-tune a TVTS checkpoint on UCF101 (split 1 by default). TVTS released no script for it: this follows VideoMAE's
# ViT-B UCF-101 recipe (8 GPUs x batch 16, lr 5e-4, layer decay 0.7, drop path 0.2, 5 x 3 test views). Make the
# list files from the official split files first:
#   python -m downstream.lists ucf101 --root <videos> --splits <split files> --split 1 --out ${DATA:-data/ucf101}
#
#   CKPT=checkpoints/TVTS_yt_pt.pth DATA=data/ucf101 bash scripts/ft_ucf101.sh [extra flags]
set -euo pipefail
exec "$(dirname "$0")/downstream_launch.sh" run_class_finetuning \
    --finetune "${CKPT:-checkpoints/TVTS_yt_pt.pth}" --data_set UCF101 --nb_classes 101 \
    --data_path "${DATA:-data/ucf101}" --output_dir "${OUT:-results/downstream/ft_ucf101}" \
    --batch_size 16 --num_frames 16 --sampling_rate 4 --input_size 224 --short_side_size 224 \
    --opt adamw --opt_betas 0.9 0.999 --lr 5e-4 --min_lr 1e-5 --weight_decay 0.05 --layer_decay 0.7 \
    --drop_path 0.2 --warmup_epochs 5 --epochs 100 --save_ckpt_freq 50 --test_num_segment 5 --test_num_crop 3 "$@"
