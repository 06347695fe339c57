#!/usr/bin/env bash
# The README's main job, on CPU: make the scripted synthetic corpus (once), pretrain the tiny TVTS on it, show how
# transcript-sort accuracy and text-video retrieval moved from the untrained to the trained model, then compare the
# pretrained video encoder with an untrained one on the labelled motion clips (zero-shot video-to-video retrieval
# and a linear probe), in a closing table that says what moved and by how much.
#
#   bash scripts/demo.sh [--ablation] [train.py overrides, e.g. trainer.epochs=50 seed=1]
#
# --ablation also pretrains the NCE-only baseline (loss.args.sort_weight=0: M_base of the paper's Table 2) with the
# same budget, beside the TVTS run (one CPU thread each), and puts it in the closing table.
# Environment: DATA (corpus folder, default data/synthetic), NUM_VIDEOS and NUM_CLIPS (corpus size when it is made:
# 1000 and 400), PROBE_EPOCHS (8), THREADS (torch threads per pretraining process: 2 alone, 1 each with --ablation),
# SEED (0: pretraining, the untrained encoder's initialisation and the probe; bench/bench_demo.py runs several),
# KIND (the narrated videos, see data_loader/synthetic.py: "shots", default, on which the tiny model learns to sort
# in this budget; "motion" and "objects", narrated motion only, which it has not learned yet: docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ABLATION=0 SEED=${SEED:-0} KIND=${KIND:-shots}
if [ "${1:-}" = "--ablation" ]; then ABLATION=1; shift; fi
DATA=${DATA:-data/synthetic}
# (re)make it when absent, or written by an older design or of another kind (see DESIGN in data_loader/synthetic.py)
CURRENT="import json, sys; from data_loader.synthetic import DESIGN
c = json.load(open(sys.argv[1])); sys.exit(c['design'] != DESIGN or c.get('kind') != sys.argv[2])"
if [ ! -f "$DATA/meta_data/prepare_report.json" ] || ! python -c "$CURRENT" "$DATA/corpus.json" "$KIND" 2>/dev/null; then
    if [ -f "$DATA/tokenizer/vocab.txt" ] || [ -f "$DATA/corpus.json" ]; then  # an older synthetic corpus: replace it
        rm -rf "$DATA/YTTemporal" "$DATA/meta_data" "$DATA/ssv2" "$DATA/tokenizer" "$DATA/corpus.json"
    elif [ -n "$(ls -A "$DATA" 2>/dev/null)" ]; then
        echo "$DATA is not empty and holds no synthetic corpus: not writing into it (set DATA to another folder)" >&2
        exit 1
    fi
    echo "== making the synthetic corpus ($KIND) in $DATA"
    python -m data_loader.synthetic --out "$DATA" --num-videos "${NUM_VIDEOS:-1000}" \
        --num-labelled "${NUM_CLIPS:-400}" --kind "$KIND"
    echo "== checking it and caching the transcript alignments"
    python -m data_loader.prepare yttemporal --data-dir "$DATA/YTTemporal" --meta-dir "$DATA/meta_data" \
        --val-fraction 0.1
fi

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
COMMON=(-c configs/demo-cpu.json data_loader.0.args.data_dir="$DATA/YTTemporal"
        data_loader.0.args.meta_dir="$DATA/meta_data" tokenizer.name="$DATA/tokenizer" seed="$SEED")
run_dir() { sed -n "s/^run directory: //p" "$1" | tail -n 1; }
if [ "$ABLATION" = 1 ]; then
    echo "== pretraining TVTS (NCE + sort, shown) and the NCE-only baseline (in $LOGS/nce.log) side by side,"
    echo "   one CPU thread each"
    python train.py "${COMMON[@]}" trainer.num_threads="${THREADS:-1}" loss.args.sort_weight=0 name=demo-cpu-nce-only \
        "$@" > "$LOGS/nce.log" 2>&1 &
    NCE_PID=$!
    python train.py "${COMMON[@]}" trainer.num_threads="${THREADS:-1}" "$@" | tee "$LOGS/tvts.log" \
        || { kill "$NCE_PID" 2>/dev/null; exit 1; }
    if ! wait "$NCE_PID"; then tail -n 20 "$LOGS/nce.log" >&2; exit 1; fi
    echo "== the NCE-only baseline:"
    grep -h -E "^run directory|\[val\]" "$LOGS/nce.log" || true
    NCE_RUN=$(run_dir "$LOGS/nce.log")
else
    echo "== pretraining the tiny model of configs/demo-cpu.json on the CPU"
    python train.py "${COMMON[@]}" trainer.num_threads="${THREADS:-2}" "$@" | tee "$LOGS/tvts.log"
fi
RUN=$(run_dir "$LOGS/tvts.log")
last_checkpoint() { ls "$1"/checkpoint-epoch*.pth | sort -V | tail -n 1; }

echo "== downstream: zero-shot retrieval and a linear probe on $DATA/ssv2, pretrained vs untrained encoders"
CLIPS=(--model "$RUN/config.json" --data_set SSV2 --nb_classes 8 --data_path "$DATA/ssv2" --num_frames 16
       --input_size 32 --short_side_size 32 --batch_size 16 --num_workers 0 --reader pyav --device cpu --seed "$SEED")
PROBE=(--epochs "${PROBE_EPOCHS:-8}" --warmup_epochs 1 --lr 0.1 --weight_decay 1e-9 --aa none --mixup 0 --cutmix 0
       --reprob 0 --test_num_segment 1 --test_num_crop 1 --save_ckpt false)
ENCODERS=("TVTS=$RUN")  # NAME=pretraining run ('-': none); outputs in downstream/{zero,linear}_<slug of NAME>
[ "$ABLATION" = 1 ] && ENCODERS+=("NCE only=$NCE_RUN")
ENCODERS+=("untrained=-")
for ENTRY in "${ENCODERS[@]}"; do
    SOURCE=${ENTRY#*=}
    SLUG=$(python -c "import sys; from downstream.compare import slug; print(slug(sys.argv[1]))" "${ENTRY%%=*}")
    if [ "$SOURCE" = - ]; then INIT=(--from_scratch); else INIT=(--finetune "$(last_checkpoint "$SOURCE")"); fi
    python -m downstream.run_class_zero "${CLIPS[@]}" "${INIT[@]}" --val_sampling center \
        --output_dir "$RUN/downstream/zero_$SLUG"
    python -m downstream.run_class_linear "${CLIPS[@]}" "${INIT[@]}" "${PROBE[@]}" \
        --output_dir "$RUN/downstream/linear_$SLUG"
done

echo "== before and after pretraining (validation clips of the synthetic corpus)"
python -m trainer.report "$RUN"
echo
echo "== downstream on the labelled clips (8 motions of a pattern behind a still shape; zero-shot R@1: a"
echo "   same-motion nearest neighbour, chance about 11%; linear probe: chance 12.5%)"
python -m downstream.compare "${ENCODERS[@]}" --downstream-dir "$RUN/downstream" --baseline untrained
