#!/usr/bin/env bash
# Stage 1: pretrain TVTS on YT-Temporal with the official recipe (configs/dist-yt-pt.json).
#
#   bash scripts/train_yt.sh                                  # one node, every visible GPU
#   NNODES=4 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/train_yt.sh   # run on each node with its NODE_RANK
#   bash scripts/train_yt.sh -bs 16 trainer.precision=bf16    # extra arguments go to train.py
#
# Under SLURM, start one task per GPU with srun and call train.py directly (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/dist-yt-pt.json}
exec env CONFIG="$CONFIG" bash scripts/pretrain_launch.sh "$@"
