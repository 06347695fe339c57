#!/usr/bin/env bash
# Stage 2: continue from the stage-1 checkpoint on CC3M + WebVid-2M (configs/dist-cc-web-pt.json).
# The stage-1 checkpoint is arch.args.load_checkpoint (default pretrained/TVTS_yt_pt.pth), e.g.
#   bash scripts/train_cc_web.sh arch.args.load_checkpoint=results/TVTS/yttemporal/<run>/checkpoint-epoch20.pth
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/dist-cc-web-pt.json exec bash scripts/train_yt.sh "$@"
