#!/usr/bin/env bash
# Pretrain SimVTP (one VideoMAE ViT-B/16 over 10% visible tubes and 75%-masked captions; MVM + MLM + VTC + VTM)
# on WebVid with the official recipe (configs/simvtp-webvid.json).
#
#   bash scripts/train_simvtp.sh                                          # one node, every visible GPU
#   NNODES=8 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/train_simvtp.sh   # the official 8 x 8 GPUs, on each node
#   bash scripts/train_simvtp.sh arch.args.load_videomae=/weights/k400_vitb_1600_pretrain.pth   # args go to train.py
#
# The start is VideoMAE's ViT-B Kinetics-400 pretraining checkpoint (1600 epochs) under pretrained/ and
# bert-base-uncased's embedding layer; the learning rates follow the global batch (1.5e-4 per 256 clips, 16 per GPU
# officially), so any GPU count keeps the official rate per clip.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/simvtp-webvid.json}
exec env CONFIG="$CONFIG" bash scripts/pretrain_launch.sh "$@"
