#!/usr/bin/env bash
# Shared launcher of the downstream scripts: `downstream_launch.sh MODULE ARGS...` runs
# `torchrun -m downstream.MODULE ARGS...` on every visible GPU of this node (one CPU process without GPUs).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and MASTER_PORT) on each node. NPROC_PER_NODE overrides the count.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE=$1
shift
NPROC=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$NPROC" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29501}" \
    -m "downstream.$MODULE" "$@"
