#!/usr/bin/env bash
# Fine-tune a SimVTP pretraining checkpoint for MSR-VTT text-video retrieval with the official recipe (8 GPUs x 8
# pairs, lr 3e-4 per 256, 5-epoch warm-up, 100 epochs, drop path 0.1, 3 x 3 test views), then test the selected
# epoch. DATA holds the authors' train_9k_miech.json / test_1k_miech.json ({video path: caption}, paths relative to
# DATA unless absolute).
#
#   CKPT=results/SimVTP/<run>/checkpoint-epoch200.pth DATA=data/MSRVTT bash scripts/ft_msrvtt_simvtp.sh
#   ... bash scripts/ft_msrvtt_simvtp.sh --select_on test    # the official selection: the best epoch on test
set -euo pipefail
exec "$(dirname "$0")/downstream_launch.sh" retrieval_finetune \
    --config "${CONFIG:-configs/simvtp-webvid.json}" --finetune "${CKPT:-pretrained/simvtp_webvid.pth}" \
    --data_path "${DATA:-data/MSRVTT}" --output_dir "${OUT:-results/downstream/simvtp_msrvtt}" \
    --batch_size 8 --num_frames 16 --sampling_rate 4 --input_size 224 --short_side_size 224 \
    --lr 3e-4 --min_lr 1e-6 --weight_decay 0.05 --layer_decay 0.75 --drop_path 0.1 --warmup_epochs 5 --epochs 100 \
    --save_ckpt_freq 10 --test_num_segment 3 --test_num_crop 3 --precision fp16 "$@"
