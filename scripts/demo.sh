#!/usr/bin/env bash
# The README's main job. For now: a CPU smoke run of the tiny TVTS model on a synthetic batch.
# It becomes the full CPU demo (synthetic corpus, pretraining, evaluation) once the trainer exists.
set -euo pipefail
cd "$(dirname "$0")/.."
python scripts/model_smoke.py --config configs/demo-cpu.json "$@"
