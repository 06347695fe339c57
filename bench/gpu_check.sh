#!/usr/bin/env bash
# The prepared check for a lent GPU (one GPU, under 10 minutes): the full-size pretraining step of TVTS v1 (ViT-B/16,
# 16 frames, the official 24 clips per GPU), TVTSv2 B/16 (12 frames, 12 clips per GPU) and SimVTP (16 frames, 90%
# tube masking, the official 16 clips per GPU) in fp32 and bf16 -
# clips/s, peak memory, counted FLOPs and MFU (bench/bench_model.py) - then the YT-Temporal loader's samples/s
# with 4, 8 and 16 DataLoader workers on the realistic corpus, original files and each re-encoding profile
# (bench/bench_loader.py). Every table goes to $OUT (default bench/results/gpu_check) and to the screen, ready for
# docs/benchmarks.md. Nothing is downloaded: models are built from their configs with random weights.
#
#   bash bench/gpu_check.sh             # on the GPU machine
#   bash bench/gpu_check.sh --dry-run   # tiny models and sizes on the CPU (tests/test_bench.py runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu_check}
mkdir -p "$OUT"
if [ "${1:-}" = "--dry-run" ]; then
    MODELS=("configs/demo-cpu.json 2" "configs/tvtsv2-demo-cpu.json 2" "configs/simvtp-demo-cpu.json 2")
    STEP=(--device cpu --res 32 --steps 1 --warmup 1)
    LOADER=(--realistic --readers pyav --realistic-videos 1 --realistic-seconds 26 --realistic-samples 1 --repeats 1
            --input-res 32 --workers 0 1 --batch-size 2 --batches 1 --profiles sampler)
else
    MODELS=("configs/dist-yt-pt.json 24" "configs/tvtsv2-b16.json 12" "configs/simvtp-webvid.json 16")
    STEP=(--device cuda --steps 10 --warmup 3)
    LOADER=(--realistic --readers decord pyav --realistic-videos 16 --realistic-samples 16 --repeats 1 --input-res 224
            --workers 4 8 16 --batch-size 24 --batches 6)
fi
START=$SECONDS
for ENTRY in "${MODELS[@]}"; do
    read -r CONFIG BATCH <<< "$ENTRY"
    NAME=$(basename "$CONFIG" .json)
    echo "== model step: $CONFIG, batch $BATCH ($((SECONDS - START)) s so far)"
    python bench/bench_model.py --config "$CONFIG" --batch-size "$BATCH" "${STEP[@]}" --precision fp32 bf16 \
        --attention sdpa --checkpointing off --out "$OUT/model_$NAME.md"
done
echo "== loader: realistic corpus ($((SECONDS - START)) s so far)"
python bench/bench_loader.py --data-dir '' "${LOADER[@]}" --out "$OUT/loader.md"
echo "== done in $((SECONDS - START)) s; tables:"
cat "$OUT"/model_*.md "$OUT/loader.md"
