#!/usr/bin/env bash
# Train the shipped weights on the offline corpus with notebooks 02-04 in full mode, then export them to
# weights/ with checksums. These are the parameters recorded in weights/README.md. Re-running after an
# interruption resumes each stage from its last checkpoint. The shipped mask and colour nets were trained this
# way on the previous corpus (before the GCompris photos); the shipped inpaint net by the 04 line below on this
# corpus (2 CPU threads).
#   python tools/build_corpus.py corpus && bash tools/train_shipped.sh
# Notebook 03 also writes the colour post-process into color.json: the training photos' mean hue histogram, the
# hue remap's submission strength (chosen on its validation split, utils.choose_hue_strength) and the ring fill.
set -euo pipefail
cd "$(dirname "$0")/.."
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184
PY=${PY:-.venv/bin/python}
DATA=${DATA:-corpus}
CK=${CK:-checkpoints_corpus}
RUNS=${RUNS:-runs_corpus}
common=(--full --data-dir "$DATA" --ckpt-dir "$CK" --out "$RUNS" -p repeats=5 -p val_count=48 -p num_workers=1)
$PY tools/run_notebooks.py "${common[@]}" --only 02 -p epochs=6 -p compare_steps=40
OMP_NUM_THREADS=${COLOR_THREADS:-1} $PY tools/run_notebooks.py "${common[@]}" --only 03 -p epochs=6 -p compare_steps=40 \
    -p 'compare_options=["perceptual+l1", "classify", "classify+perceptual"]'
$PY tools/run_notebooks.py --full --data-dir "$DATA" --ckpt-dir "$CK" --out "$RUNS" --only 04 -p train_source=photos \
    -p repeats=2 -p lr=0.002 -p val_count=16 -p num_workers=0 -p epochs=${INPAINT_EPOCHS:-8}
$PY -c "import utils; print(utils.export_weights('$CK', 'weights'))"
# The colour post-process's score-vs-looks frontier on the held-out photos (docs/colour_experiments.md)
$PY tools/build_heldout.py "$DATA" heldout --per-photo 5
$PY research/colour_frontier.py --weights weights --data-dir heldout --json runs/colour/frontier.json
