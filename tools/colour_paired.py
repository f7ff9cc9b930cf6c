"""Paired difference between two runs of tools/colour_variants.py on the same set (e.g. new colour weights against
the shipped ones): for each variant (or the two named ones), the per-image score and terms of B minus A, averaged per
photo (crops of one photo are not independent), with the standard error over photos.

    python tools/colour_paired.py runs/colour/shipped.json runs/colour/new.json
    python tools/colour_paired.py A.json B.json --a "hue=prior" --b "hue=head;chroma=32/1e-2/0.25/ring;hc=3"
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TERMS = ("score", "ssim", "masked_ssim", "hue")


def paired(a: np.ndarray, b: np.ndarray, photos) -> dict:
    """[N,4] per-image terms of A and B, photo of each image -> {term: (mean B-A over photos, standard error)}."""
    photos = np.asarray(photos)
    d = np.asarray(b) - np.asarray(a)
    by_photo = np.stack([d[photos == p].mean(0) for p in np.unique(photos)])
    se = by_photo.std(0, ddof=1) / np.sqrt(len(by_photo)) if len(by_photo) > 1 else np.full(len(TERMS), np.nan)
    return {t: (float(by_photo[:, k].mean()), float(se[k])) for k, t in enumerate(TERMS)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--a", dest="va", default=None, help="the variant of A (default: every variant both runs have)")
    ap.add_argument("--b", dest="vb", default=None, help="the variant of B (default: the same as --a)")
    args = ap.parse_args(argv)
    A, B = (json.loads(p.read_text()) for p in (args.a, args.b))
    if A["names"] != B["names"]:
        print(f"error: {args.a} and {args.b} were scored on other images", file=sys.stderr)
        return 2
    pairs = [(args.va, args.vb or args.va)] if args.va else [(v, v) for v in A["per_image"] if v in B["per_image"]]
    n_photos = len(set(A["image_photos"]))
    print(f"B - A over {len(A['names'])} images of {n_photos} photos (mean over photos ± standard error)")
    for va, vb in pairs:
        d = paired(A["per_image"][va], B["per_image"][vb], A["image_photos"])
        label = va if va == vb else f"{vb} - {va}"
        print(f"{label:50s} " + "  ".join(f"{t} {m:+.4f} ± {s:.4f}" for t, (m, s) in d.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
