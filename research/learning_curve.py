"""What data buys: the colour stage trained on 1/8, 1/4, 1/2 and all of a corpus's training photos with the same
recipe and the same budget per photo (epochs x repeats fixed, so steps grow with the photos), each net written to
its own checkpoint folder (resumable: rerun the same command after an interruption).

    python research/learning_curve.py corpus --out runs/curve --epochs 6 --repeats 2 --image-size 128
    python research/learning_curve.py corpus --out runs/curve --score heldout   # then score each net held out

The photos of each fraction are nested (the 1/8 list is in the 1/4 list, ...), drawn by scene so a scene's photos
come together. Scoring runs benchmark.py's pipeline on a held-out folder (tools/build_heldout.py) with each
colour net and the shipped mask and inpaint nets, and writes curve.json: score, SSIM, masked SSIM, hue with 95%
intervals per point, and the constant-prior remap of each net's own output.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def photo_lists(corpus: Path, out: Path, seed: int = 0) -> dict:
    """{fraction: list file} of nested photo subsets of the corpus's training photos (less validation scenes)."""
    import utils

    run = utils.prepare_run(corpus, "cpu", 0)
    photos = utils.train_photo_paths(run["data_dir"], run["train_paths"], run["val_paths"])
    import pandas as pd

    man = pd.read_csv(corpus / "manifest.csv")
    scene = dict(zip(man["source"], man["scene"].astype(str)))
    scenes = sorted({scene[str(p)] for p in photos})
    order = {s: i for i, s in enumerate(np.random.default_rng(seed).permutation(scenes))}
    photos = sorted(photos, key=lambda p: (order[scene[str(p)]], str(p)))
    out.mkdir(parents=True, exist_ok=True)
    lists = {}
    for f in FRACTIONS:
        n = max(2, round(len(photos) * f))
        path = out / f"photos_{f:g}.txt"
        path.write_text("".join(f"{p}\n" for p in photos[:n]))
        lists[f] = path
    return lists


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/curve"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=256, help="the colour net's working size")
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    ap.add_argument("--score", type=Path, default=None, metavar="HELDOUT", help="score the trained nets on this folder")
    ap.add_argument("--weights", type=Path, default=Path("weights"), help="mask and inpaint nets for scoring")
    args = ap.parse_args(argv)
    lists = photo_lists(args.corpus, args.out)
    if args.score is None:
        for f in args.fractions:
            n = len(lists[f].read_text().split())
            print(f"fraction {f:g}: {n} photos", flush=True)
            subprocess.run([sys.executable, "tools/train.py", "--stage", "color", "--data-dir", str(args.corpus),
                            "--ckpt-dir", str(args.out / f"ck_{f:g}"), "--train-source", "photos", "--photos",
                            str(lists[f]), "--epochs", str(args.epochs), "--repeats", str(args.repeats),
                            "--val-count", "24", "--num-workers", "0", "--image-size", str(args.image_size)],
                           check=True)
        return 0
    import utils
    from benchmark import heldout_scores      # noqa: the benchmark's scoring of a weights folder

    rows = {}
    for f in args.fractions:
        w = args.out / f"weights_{f:g}"
        w.mkdir(parents=True, exist_ok=True)
        for stem in ("mask", "inpaint"):
            for ext in (".json", ".safetensors"):
                shutil.copy(args.weights / f"{stem}{ext}", w / f"{stem}{ext}")
        for ext in (".json", ".safetensors"):
            shutil.copy(args.out / f"ck_{f:g}" / f"color{ext}", w / f"color{ext}")
        utils.write_checksums(w)
        rows[f"{f:g}"] = {"photos": len(lists[f].read_text().split()), **heldout_scores(w, args.score)}
        print(f, rows[f"{f:g}"], flush=True)
    (args.out / "curve.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
