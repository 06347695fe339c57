#!/usr/bin/env bash
# The torchrun launch every pretraining script shares: train.py -c "$CONFIG" on every visible GPU of this node.
# NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT set the layout; arguments go to train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CONFIG:?set CONFIG to a training config}"
NPROC=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$NPROC" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    train.py -c "$CONFIG" "$@"
