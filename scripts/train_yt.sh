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
NPROC=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$NPROC" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    train.py -c "$CONFIG" "$@"
