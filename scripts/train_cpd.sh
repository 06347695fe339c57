#!/usr/bin/env bash
# Pretrain CPD (3D ResNet-50 + DistilBERT, memory-bank NCE, text tower frozen for the first 150 of 300 epochs)
# with the official recipe; the corpus is the config.
#
#   bash scripts/train_cpd.sh                                        # Instagram-300k layout, every visible GPU
#   CONFIG=configs/cpd-webvid.json bash scripts/train_cpd.sh         # the same recipe on WebVid
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/train_cpd.sh # run on each node with its NODE_RANK
#   bash scripts/train_cpd.sh data_loader.0.args.list_file=/data/ins/list.json   # extra arguments go to train.py
#
# The official batch is 32 clips per GPU on 8 GPUs; on another GPU count set data_loader.0.args.batch_size so the
# total stays 256.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/cpd-ins300k.json}
exec env CONFIG="$CONFIG" bash scripts/pretrain_launch.sh "$@"
