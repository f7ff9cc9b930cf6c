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

FRACTIONS = (0.0625, 0.125, 0.25, 0.5, 1.0)


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
    ap.add_argument("--weights", type=Path, default=Path("weights"), help="mask and inpaint nets for scoring (the "
                    "true masks are used: the curve is about colour)")
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
    from utils.inference.hue import HueConfig

    all_photos = lists[max(lists)].read_text().split()
    prior = utils.hue_prior(all_photos, progress=False).tolist()    # the constant guess: the training photos' mean
    data = args.score
    names = sorted(p.name for p in (data / "test_input").glob("*.png"))
    photo = dict(zip(*pd_read(data / "manifest.csv", ["name", "source"])))
    grays = [utils.read_image(data / "test_input" / n, "L") for n in names]
    masks = [np.asarray(utils.read_image(data / "test_mask" / n, "L")) > 0 for n in names]
    gts = [utils.read_image(data / "test_gt" / n, "RGB") for n in names]
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
        restorer = utils.Restorer.from_dir(w, device="cpu", colour="natural", hole_colour="ring",
                                           hue=HueConfig(1.0, True, prior))
        row = {"photos": len(lists[f].read_text().split())}
        for label, r in (("net", restorer), ("prior_remap", restorer.with_colour(1.0))):
            outs = [x.restored for i in range(0, len(names), 8)
                    for x in r.restore_batch(grays[i:i + 8], masks[i:i + 8])]
            per = {}
            for n, gt, out, m in zip(names, gts, outs, masks):
                sc = utils.score_image(gt, out, m)
                per.setdefault(photo[n], []).append([sc["score"], sc["hue"], sc["ssim"], sc["masked_ssim"]])
            means = np.array([np.mean(v, 0) for v in per.values()])
            for j, k in enumerate(("score", "hue", "ssim", "masked_ssim")):
                row[f"{label}_{k}"], row[f"{label}_{k}_ci95"] = interval(means[:, j])
            row.setdefault("per_photo", {})[label] = means[:, :2].tolist()
        d = np.array(row["per_photo"]["net"])[:, 1] - np.array(row["per_photo"]["prior_remap"])[:, 1]
        row["hue_net_minus_prior"], row["hue_net_minus_prior_ci95"] = interval(d)
        rows[f"{f:g}"] = row
        print(f"{f:g} ({row['photos']} photos): score {row['net_score']:.4f} +- {row['net_score_ci95']:.4f}, "
              f"hue {row['net_hue']:.4f} +- {row['net_hue_ci95']:.4f}; prior remap of its output: score "
              f"{row['prior_remap_score']:.4f}, hue {row['prior_remap_hue']:.4f}; net - prior hue "
              f"{row['hue_net_minus_prior']:+.4f} +- {row['hue_net_minus_prior_ci95']:.4f}", flush=True)
    (args.out / "curve.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "learning_curve.png")
    return 0


def pd_read(path, columns):
    import pandas as pd

    t = pd.read_csv(path)
    return [list(t[c]) for c in columns]


def interval(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def plot(rows: dict, path: Path) -> None:
    """Score and hue against the number of training photos (log scale), with 95% intervals and the constant-prior
    remap of each net's output."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["photos"] for r in rows.values()]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, k in zip(axes, ("score", "hue")):
        ax.errorbar(n, [r[f"net_{k}"] for r in rows.values()], [r[f"net_{k}_ci95"] for r in rows.values()],
                    marker="o", capsize=3, label="colour net (natural)")
        ax.errorbar(
            n,
            [r[f"prior_remap_{k}"] for r in rows.values()],
            [r[f"prior_remap_{k}_ci95"] for r in rows.values()],
            marker="s",
            capsize=3,
            linestyle="--",
            label="constant prior remap of its output",
        )
        ax.set_xscale("log")
        ax.set_xlabel("training photos")
        ax.set_ylabel(f"held-out {k}")
        ax.set_xticks(n)
        ax.set_xticklabels([str(x) for x in n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].legend(fontsize=7)
    fig.suptitle("What data buys: the colour stage on 1/16 .. all of the training photos (held out)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
