#!/usr/bin/env bash
# CPD's official transfer protocol: fine-tune (or linear-probe) a CPD checkpoint's 3D ResNet on UCF-101 or HMDB-51,
# each of the 3 splits, then print the per-split and mean multi-view top-1 (the README reports 3-split means:
# UCF-101 92.8 fine-tuned / 83.7 linear, HMDB-51 63.6 / 54.7). The recipe is --recipe cpd (downstream/args.py
# CPD_DEFAULTS): SGD 0.02 (linear 2; the README also names 20), plateau schedule, dropout 0.8, 100 epochs,
# 16 frames at stride 4, 16 clips per forward and a total batch of 128, test 10 clips x 3 crops at 256.
#
#   CKPT=pretrained/cpd_ins300k.pth DATASET=ucf101 ROOT=/data/UCF-101 SPLITS_DIR=/data/ucfTrainTestlist \
#       bash scripts/cpd_transfer.sh [extra flags for every split]
#   PROTOCOL=linear SPLITS="1" ... bash scripts/cpd_transfer.sh --lr 20
#
# The list files of split k are made in $DATA/split<k> (default data/<dataset>_lists) unless they exist; results
# go to $OUT/split<k> (default results/cpd_transfer/<dataset>_<protocol>).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${DATASET:-ucf101}
PROTOCOL=${PROTOCOL:-finetune}
case "$DATASET" in
    ucf101) DATA_SET=UCF101; CLASSES=101 ;;
    hmdb51) DATA_SET=HMDB51; CLASSES=51 ;;
    *) echo "DATASET must be ucf101 or hmdb51, got $DATASET" >&2; exit 2 ;;
esac
case "$PROTOCOL" in
    finetune) MODULE=run_class_finetuning ;;
    linear) MODULE=run_class_linear ;;
    *) echo "PROTOCOL must be finetune or linear, got $PROTOCOL" >&2; exit 2 ;;
esac
ROOT=${ROOT:?set ROOT to the dataset folder holding <class>/<video>.avi}
DATA=${DATA:-data/${DATASET}_lists}
OUT=${OUT:-results/cpd_transfer/${DATASET}_${PROTOCOL}}
NPROC=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
# the official: 16 clips per GPU (BatchNorm and each GPU's own head see 16) on 8 GPUs. On fewer GPUs keep 16 per
# forward and accumulate gradients up to the total batch.
TOTAL_BATCH=${TOTAL_BATCH:-128}
if (( TOTAL_BATCH % (16 * NPROC) == 0 )); then
    BATCH=16; UPDATE_FREQ=$(( TOTAL_BATCH / (16 * NPROC) ))
elif (( TOTAL_BATCH % NPROC == 0 )); then
    BATCH=$(( TOTAL_BATCH / NPROC )); UPDATE_FREQ=1
else
    echo "TOTAL_BATCH $TOTAL_BATCH does not split over $NPROC processes" >&2; exit 2
fi
runs=()
for k in ${SPLITS:-1 2 3}; do
    if [[ ! -f "$DATA/split$k/train.csv" ]]; then
        python -m downstream.lists "$DATASET" --root "$ROOT" \
            --splits "${SPLITS_DIR:?set SPLITS_DIR to the native split files}" --split "$k" --out "$DATA/split$k"
    fi
    NPROC_PER_NODE=$NPROC "$(dirname "$0")/downstream_launch.sh" "$MODULE" --recipe cpd \
        --model "${CONFIG:-configs/cpd-ins300k.json}" --finetune "${CKPT:-pretrained/cpd_ins300k.pth}" \
        --data_set "$DATA_SET" --nb_classes "$CLASSES" --data_path "$DATA/split$k" --video_root "$ROOT" \
        --batch_size "$BATCH" --update_freq "$UPDATE_FREQ" --output_dir "$OUT/split$k" "$@"
    runs+=("split$k=$OUT/split$k")
done
python -m downstream.report --mean "${runs[@]}"
