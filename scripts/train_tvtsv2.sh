#!/usr/bin/env bash
# Pretrain TVTSv2 on YT-Temporal + WebVid with the official recipe; the model size is the config.
#
#   CONFIG=configs/tvtsv2-b16.json bash scripts/train_tvtsv2.sh          # B/16 (default), every visible GPU
#   CONFIG=configs/tvtsv2-b32.json bash scripts/train_tvtsv2.sh          # B/32
#   CONFIG=configs/tvtsv2-h14.json bash scripts/train_tvtsv2.sh          # H/14 (fp16 autocast, as official)
#   NNODES=4 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/train_tvtsv2.sh  # run on each node with its NODE_RANK
#   bash scripts/train_tvtsv2.sh arch.args.clip_checkpoint=/weights/ViT-B-16.pt   # extra arguments go to train.py
#
# The configs expect the CLIP weights under pretrained/ (OpenAI's ViT-B-32.pt / ViT-B-16.pt, OpenCLIP's
# ViT-H-14 laion2b_s32b_b79k open_clip_pytorch_model.bin) and the data as README "Preparing real data" says.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/tvtsv2-b16.json}
exec env CONFIG="$CONFIG" bash scripts/pretrain_launch.sh "$@"
