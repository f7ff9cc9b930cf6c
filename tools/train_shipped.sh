#!/usr/bin/env bash
# Train the shipped weights on the offline corpus with notebooks 02-04 in full mode, then export them to
# weights/ with checksums. The -p values are fields of each stage's config (utils.train_config), set on top of the
# preset "default" (the measured settings), and the settings recorded in weights/README.md; each checkpoint's JSON
# records the whole config. Re-running after an interruption resumes each stage from its last checkpoint. The
# shipped mask net was trained this way on a corpus without the GCompris photos (90 photos); the colour and inpaint
# nets by the 03 and 04 lines below on this corpus (2 CPU threads shared with other jobs).
#   python tools/build_corpus.py corpus && bash tools/train_shipped.sh
# The colour net trains in two steps (progressive resizing): 6 epochs at 128 px from ImageNet (the learning curve's
# "all photos" point, research/learning_curve.py), then 5 epochs at 256 px from those weights. Notebook 03 also
# writes the colour post-process into color.json: the training photos' mean hue histogram, the hue remap's
# submission strength (chosen on its validation split, utils.choose_hue_strength) and the ring fill.
set -euo pipefail
cd "$(dirname "$0")/.."
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184
PY=${PY:-.venv/bin/python}
DATA=${DATA:-corpus}
CK=${CK:-checkpoints_corpus}
RUNS=${RUNS:-runs_corpus}
common=(--full --data-dir "$DATA" --ckpt-dir "$CK" --out "$RUNS" -p repeats=5 -p val_count=48 -p num_workers=1)
$PY tools/run_notebooks.py "${common[@]}" --only 02 -p epochs=6 -p compare_steps=40
colour=(--full --data-dir "$DATA" --only 03 -p train_source=photos -p repeats=2 -p val_count=24 -p num_workers=0
        -p loss=classify -p compare_losses=False)
$PY tools/run_notebooks.py "${colour[@]}" --ckpt-dir "$CK/color128" --out "$RUNS/color128" -p image_size=128 -p epochs=6
$PY tools/run_notebooks.py "${colour[@]}" --ckpt-dir "$CK" --out "$RUNS" -p image_size=256 -p epochs=5 -p lr=0.00025 \
    -p init_weights="$CK/color128"
$PY tools/run_notebooks.py --full --data-dir "$DATA" --ckpt-dir "$CK" --out "$RUNS" --only 04 -p train_source=photos \
    -p repeats=2 -p lr=0.002 -p val_count=16 -p num_workers=0 -p epochs=${INPAINT_EPOCHS:-21}
# Fine-tunes from those weights, into $CK/final (weights/README.md): the inpainter over the full-resolution biharmonic
# pre-fill, 2 epochs at lr 5e-4 (the recorded run stopped after 2 of 10 cosine epochs, whose factors were 1 and 0.98),
# then 16 epochs of a cosine from 5e-4 with a fifth of the damage free-form strokes; the mask net 3 short epochs with
# 40% strokes. The colour net is taken as it is.
FT="$CK/final"
inpaint=(--full --data-dir "$DATA" --only 04 -p train_source=photos -p repeats=2 -p val_count=16 -p num_workers=0
         -p lr=0.0005 -p prefill=biharmonic -p compare_losses=False)
$PY tools/run_notebooks.py "${inpaint[@]}" --ckpt-dir "$CK/inpaint_bh" --out "$RUNS/inpaint_bh" -p epochs=2 \
    -p init_weights="$CK"
$PY tools/run_notebooks.py "${inpaint[@]}" --ckpt-dir "$FT" --out "$RUNS/final" -p epochs=16 -p lr_schedule=cosine \
    -p stroke_share=0.2 -p init_weights="$CK/inpaint_bh"
$PY tools/train.py --stage mask --data-dir "$DATA" --ckpt-dir "$FT" --init-weights "$CK" --stroke-share 0.4 --lr 3e-4 \
    --epochs 3 --steps-per-epoch 60 --batch-size 8 --val-count 24
cp "$CK/color.safetensors" "$CK/color.json" "$FT/"
$PY -c "import utils; print(utils.export_weights('$FT', 'weights'))"
# The colour post-process's score-vs-looks frontier on the held-out photos (docs/colour_experiments.md)
$PY tools/build_heldout.py "$DATA" heldout --per-photo 3
$PY research/colour_frontier.py --weights weights --data-dir heldout --json runs/colour/frontier.json
