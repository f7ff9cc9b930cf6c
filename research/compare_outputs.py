"""Score folders of restored images against a held-out folder's truth, paired over photos.

    python research/compare_outputs.py heldout runs/out/old runs/out/new ... --baseline runs/out/old
        [--reference runs/out/natural] [--only-photos photos.txt] [--json out.json]

For each folder: the competition score and its three terms (mean over crops), then the difference to the
baseline folder paired over photos (each photo's crops averaged first) with a 95% interval, and the visible
colour change from --reference (per-image 95th-percentile CIEDE2000, mean over images), if given. --only-photos
keeps the crops of the photos a text file lists (one source path per line), e.g. the photos that no version
being compared ever trained on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def interval(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def visible_change(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.percentile(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)), 95))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--reference", type=Path, default=None, help="visible change is measured from this folder")
    ap.add_argument("--only-photos", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import utils

    man = pd.read_csv(args.data / "manifest.csv")
    if args.only_photos:
        keep = set(args.only_photos.read_text().split("\n"))
        man = man[man.source.isin(keep)]
    names, photo = list(man.name), dict(zip(man.name, man.source))
    gt = {n: utils.read_image(args.data / "test_gt" / n, "RGB") for n in names}
    mask = {n: np.asarray(utils.read_image(args.data / "test_mask" / n, "L")) > 0 for n in names}
    tables, change = {}, {}
    for folder in dict.fromkeys([args.baseline, *args.folders]):
        rows = []
        for n in names:
            pred = utils.read_image(folder / n, "RGB")
            rows.append({"name": n, "photo": photo[n], **utils.score_image(gt[n], pred, mask[n])})
            if args.reference is not None:
                change.setdefault(folder, []).append(visible_change(utils.read_image(args.reference / n, "RGB"), pred))
        tables[folder] = pd.DataFrame(rows)
    base = tables[args.baseline].groupby("photo")[["score", "ssim", "masked_ssim", "hue"]].mean()
    out = {}
    print(f"{len(names)} crops of {man.source.nunique()} photos; differences paired over photos vs {args.baseline}")
    for folder, t in tables.items():
        per = t.groupby("photo")[["score", "ssim", "masked_ssim", "hue"]].mean()
        row = {k: float(t[k].mean()) for k in ("score", "ssim", "masked_ssim", "hue")}
        for k in ("score", "ssim", "masked_ssim", "hue"):
            row[f"d_{k}"], row[f"d_{k}_ci95"] = interval(per[k] - base[k])
        if folder in change:
            row["visible_change_p95"] = float(np.mean(change[folder]))
        out[str(folder)] = row
        vis = f"  visible {row['visible_change_p95']:5.1f}" if "visible_change_p95" in row else ""
        print(f"{str(folder):40s} score {row['score']:.4f} (SSIM {row['ssim']:.4f}, masked {row['masked_ssim']:.4f}, "
              f"hue {row['hue']:.4f})  d_score {row['d_score']:+.4f} +- {row['d_score_ci95']:.4f}  "
              f"d_masked {row['d_masked_ssim']:+.4f} +- {row['d_masked_ssim_ci95']:.4f}{vis}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"crops": len(names), "photos": int(man.source.nunique()), "rows": out}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
