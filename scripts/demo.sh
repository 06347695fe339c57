#!/usr/bin/env bash
# The README's main job, on CPU: make the scripted synthetic corpus (once), pretrain the tiny TVTS on it, show how
# transcript-sort accuracy and text-video retrieval moved from the untrained to the trained model, then compare the
# pretrained video encoder with an untrained one on the synthetic Something-Something-style clips (zero-shot
# video-to-video retrieval and a linear probe).
# Extra arguments go to train.py (e.g. trainer.epochs=50). Environment: DATA (corpus folder, default
# data/synthetic), NUM_VIDEOS and NUM_CLIPS (corpus size when it is made: 1000 and 400), PROBE_EPOCHS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/synthetic}
# (re)make it when absent or written by an older design of the generator (see DESIGN in data_loader/synthetic.py)
CURRENT="import json, sys; from data_loader.synthetic import DESIGN
sys.exit(json.load(open(sys.argv[1]))['design'] != DESIGN)"
if [ ! -f "$DATA/meta_data/prepare_report.json" ] || ! python -c "$CURRENT" "$DATA/corpus.json" 2>/dev/null; then
    if [ -f "$DATA/tokenizer/vocab.txt" ] || [ -f "$DATA/corpus.json" ]; then  # an older synthetic corpus: replace it
        rm -rf "$DATA/YTTemporal" "$DATA/meta_data" "$DATA/ssv2" "$DATA/tokenizer" "$DATA/corpus.json"
    elif [ -n "$(ls -A "$DATA" 2>/dev/null)" ]; then
        echo "$DATA is not empty and holds no synthetic corpus: not writing into it (set DATA to another folder)" >&2
        exit 1
    fi
    echo "== making the synthetic corpus in $DATA"
    python -m data_loader.synthetic --out "$DATA" --num-videos "${NUM_VIDEOS:-1000}" \
        --num-labelled "${NUM_CLIPS:-400}"
    echo "== checking it and caching the transcript alignments"
    python -m data_loader.prepare yttemporal --data-dir "$DATA/YTTemporal" --meta-dir "$DATA/meta_data" \
        --val-fraction 0.1
fi
echo "== pretraining the tiny model of configs/demo-cpu.json on the CPU"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
python train.py -c configs/demo-cpu.json data_loader.0.args.data_dir="$DATA/YTTemporal" \
    data_loader.0.args.meta_dir="$DATA/meta_data" tokenizer.name="$DATA/tokenizer" "$@" | tee "$OUT"
RUN=$(sed -n "s/^run directory: //p" "$OUT" | tail -n 1)
CKPT=$(ls "$RUN"/checkpoint-epoch*.pth | sort -V | tail -n 1)

echo "== downstream: zero-shot retrieval and a linear probe on $DATA/ssv2, pretrained ($CKPT) vs untrained encoder"
CLIPS=(--model "$RUN/config.json" --data_set SSV2 --nb_classes 8 --data_path "$DATA/ssv2" --num_frames 16
       --input_size 32 --short_side_size 32 --batch_size 16 --num_workers 0 --reader pyav --device cpu)
PROBE=(--epochs "${PROBE_EPOCHS:-8}" --warmup_epochs 1 --lr 0.1 --weight_decay 1e-9 --aa none --mixup 0 --cutmix 0
       --reprob 0 --test_num_segment 1 --test_num_crop 1 --save_ckpt false)
for ENCODER in pretrained untrained; do
    if [ "$ENCODER" = pretrained ]; then INIT=(--finetune "$CKPT"); else INIT=(--from_scratch); fi
    python -m downstream.run_class_zero "${CLIPS[@]}" "${INIT[@]}" --val_sampling center \
        --output_dir "$RUN/downstream/zero_$ENCODER"
    python -m downstream.run_class_linear "${CLIPS[@]}" "${INIT[@]}" "${PROBE[@]}" \
        --output_dir "$RUN/downstream/linear_$ENCODER"
done

echo "== before and after pretraining (validation clips of the synthetic corpus)"
python -m trainer.report "$RUN"
echo
echo "== downstream on the synthetic clips (8 motion classes: chance top-1 12.5%)"
python -m downstream.report "zero-shot, pretrained=$RUN/downstream/zero_pretrained" \
    "zero-shot, untrained=$RUN/downstream/zero_untrained" \
    "linear probe, pretrained=$RUN/downstream/linear_pretrained" \
    "linear probe, untrained=$RUN/downstream/linear_untrained"
