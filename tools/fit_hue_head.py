"""Train the per-photo hue distribution head (`utils.hue_head.HueHead`) on random crops of the TRAIN photos.

1. features: `--crops` crops drawn at random positions and scales (short side 512 x s, s in --scale) with flips
   from the full-resolution train photos of the corpus (its manifest's train sources; never a test photo),
   each with fresh polygon damage; the shipped colour net (--weights) gives its bin-probability mass and its
   decoded image; stored with the true chroma-angle histogram in --out/features.npz (skipped when present).
2. fit: the head's weights on those features against 1 - histogram correlation (the score's own term),
   printed per photo-grouped fold (validation on photos the fold did not fit on), then on all crops.
3. --save: the head goes into the colour checkpoint's inference config (`hue_head`), with the training record.

    python tools/fit_hue_head.py --corpus corpus --weights weights --out runs/hue_head --crops 480 --save

--cross-fit PLAN.json (tools/cross_fit_colour.py writes it): the features of each photo come from the colour net of
the fold that did NOT train on it, so the head learns how far to trust a net on photos it never saw (a head fitted
on the net's own training photos learns to trust it too much). The validation folds are the plan's folds, and
--out gets head_fold<k>.json, the head fitted without fold k, for the cross-fitted validation of the pipeline.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def train_photos(corpus: Path) -> list[str]:
    """The corpus's train-split source photos (never a test photo), sorted: what the features' photo ids index."""
    man = pd.read_csv(corpus / "manifest.csv")
    return sorted(set(man[man.split == "train"].source) - set(man[man.split == "test"].source))


def build_features(photos: list[str], weights: list[Path], net_of: list[int], n_crops: int, scale, seed: int,
                   out: Path) -> dict:
    """Features of `n_crops` random crops spread over `photos`; photo i's crops go through colour net
    weights[net_of[i]]."""
    import torch
    from tqdm.auto import tqdm

    import utils
    from utils.chroma import net_bin_probabilities
    from utils.hue import angle_histogram, hsv_hue_histogram
    from utils.sample_data import _load_rgb, random_crop

    nets = [utils.load_model(w / "color", "cpu") for w in weights]
    rng = np.random.default_rng(seed)
    plan = [photos[i % len(photos)] for i in rng.permutation(n_crops) % len(photos)]
    rows = {"photo": [], "mass": [], "own": [], "true": [], "true_hsv": []}
    cache_path, cache = None, None
    for i, src in enumerate(tqdm(sorted(plan), desc="train crops")):
        if src != cache_path:
            cache_path, cache = src, _load_rgb(Path(src))
        crop, _ = random_crop(cache, rng, scale=tuple(scale))
        dmg = utils.sample_damage(rng, utils.DamageConfig())
        gray = utils.apply_damage(utils.gray_of(crop), dmg)
        photo = photos.index(src)
        net, cfg = nets[net_of[photo]]
        size = cfg.get("inference", {}).get("size", 256)
        with torch.inference_mode():
            mass, _ = net_bin_probabilities(net, [gray], [dmg.mask], size)
            colored = utils.colorize(net, [gray], [dmg.mask], size)[0]
        rows["photo"].append(photo)
        rows["mass"].append(mass[0])
        rows["own"].append(angle_histogram(colored))
        rows["true"].append(angle_histogram(crop))
        h = hsv_hue_histogram(crop)
        rows["true_hsv"].append(h / h.sum())
    feats = {k: np.asarray(v) for k, v in rows.items()}
    feats["bin_centers"] = nets[0][0].bin_centers.cpu().numpy()
    feats["sources"] = np.asarray(photos)        # what the photo ids index
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "features.npz", **feats)
    return feats


def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--out", type=Path, default=Path("runs/hue_head"))
    ap.add_argument("--crops", type=int, default=480)
    ap.add_argument("--scale", type=float, nargs=2, default=(1.0, 2.5))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--bias-l2", type=float, default=1e-2)
    ap.add_argument("--own-smooth", type=float, default=8.0)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--angle-space", action="store_true", help="correlate in chroma-angle bins (default: through "
                    "angle_to_hsv_hue, the metric's own OpenCV hue bins)")
    ap.add_argument("--exclude-validation-only", action="store_true", help="leave out the train photos that no "
                    "network trained on (tools/build_heldout.py --validation-only builds the set that chooses "
                    "the post-processing from them)")
    ap.add_argument("--unseen-only", action="store_true", help="fit only on the train photos with a crop in the "
                    "notebooks' validation split, less the validation-only ones: the photos that a colour net trained "
                    "with train_source='photos' never saw, so its features there look like those of new photos")
    ap.add_argument("--cross-fit", type=Path, default=None, metavar="PLAN", help="a cross-fitting plan (JSON: "
                    "folds, each with the weights of a colour net and the photos it did not train on): each photo's "
                    "features from its fold's net; --weights is the net the head is for (trained on all the photos)")
    ap.add_argument("--save", action="store_true", help="write the head into <weights>/color.json")
    args = ap.parse_args(argv)
    if args.cross_fit and (args.exclude_validation_only or args.unseen_only):
        ap.error("--cross-fit: the plan names the photos; --exclude-validation-only and --unseen-only do not apply")
    import torch

    import utils
    from utils.hue import HueConfig
    from utils.hue_head import HueHead, angle_to_hsv_hue, bins_to_angles, fit_hue_head, own_feature, soft_angle_histogram

    torch.manual_seed(args.seed)
    path = args.out / "features.npz"
    t0 = time.time()
    if args.cross_fit:
        xplan = json.loads(args.cross_fit.read_text())
        photos_all = sorted(p for f in xplan["folds"] for p in f["photos"])
        fold_weights = [Path(f["weights"]) for f in xplan["folds"]]
        fold_of_photo = [next(k for k, f in enumerate(xplan["folds"]) if p in f["photos"]) for p in photos_all]
    else:
        photos_all, fold_weights = train_photos(args.corpus), [args.weights]
        fold_of_photo = [0] * len(photos_all)
    feats = dict(np.load(path)) if path.is_file() else build_features(photos_all, fold_weights, fold_of_photo,
                                                                      args.crops, args.scale, args.seed, args.out)
    sources = list(feats.pop("sources")) if "sources" in feats else None
    if (sources is not None and sources != photos_all) or (args.cross_fit and sources is None):
        print(f"error: {path} was built for other photos (another corpus or plan): remove it or use another --out",
              file=sys.stderr)
        return 2
    print(f"features: {len(feats['true'])} crops of {len(set(feats['photo']))} train photos ({time.time() - t0:.0f} s)")
    _, cfg = utils.load_model(args.weights / "color", "cpu")
    prior = np.asarray(HueConfig.from_dict(cfg["inference"]["hue"]).prior)
    b2a = bins_to_angles(feats["bin_centers"])
    soft = soft_angle_histogram(feats["mass"], b2a)
    own = own_feature(feats["own"], args.own_smooth)
    true = feats["true"]
    if args.exclude_validation_only or args.unseen_only:
        sys.path.insert(0, str(ROOT / "tools"))
        from build_heldout import validation_only_photos

        source = np.array(photos_all)[feats["photo"]]
        skip = set(validation_only_photos(args.corpus))
        keep = ~np.isin(source, list(skip))
        if args.exclude_validation_only:
            print(f"left out {len(skip)} validation-only photos ({int((~keep).sum())} crops)")
        if args.unseen_only:
            run = utils.prepare_run(args.corpus, "cpu")
            trained = [str(p) for p in utils.train_photo_paths(args.corpus, run["train_paths"], run["val_paths"])]
            keep &= ~np.isin(source, trained)
        feats = {k: (v[keep] if k != "bin_centers" else v) for k, v in feats.items()}
        soft, own, true = soft[keep], own[keep], true[keep]
        if args.unseen_only:
            print(f"fitting on {len(set(feats['photo']))} photos unseen by a photo-crop colour net ({int(keep.sum())} crops)")
    fit = dict(steps=args.steps, lr=args.lr, bias_l2=args.bias_l2, seed=args.seed)
    space = None if args.angle_space else angle_to_hsv_hue()

    # photo-grouped folds: validation crops come from photos the fold's head never saw
    photos = np.unique(feats["photo"])
    if args.cross_fit:      # the nets' folds: a fold's head is validated on photos neither it nor their net saw
        folds = np.array([fold_of_photo[p] for p in feats["photo"]])
    else:
        fold_of = {p: i % args.folds for i, p in enumerate(np.random.default_rng(args.seed).permutation(photos))}
        folds = np.array([fold_of[p] for p in feats["photo"]])
    rows = []
    n_folds = len(xplan["folds"]) if args.cross_fit else args.folds
    empty = [f for f in range(n_folds) if not (folds == f).any()]
    if empty:
        print(f"error: no crops of fold(s) {empty}: raise --crops (now {args.crops})", file=sys.stderr)
        return 2
    for f in range(n_folds):
        tr, va = folds != f, folds == f
        head = HueHead(prior)
        fit_hue_head(head, soft[tr], own[tr], true[tr], space=space, **fit)
        pred = head.predict(soft[va], own[va])
        rows.append({"fold": f, "crops": int(va.sum()), "head": corr(pred, true[va]).mean(),
                     "prior": corr(prior[None], true[va]).mean(), "soft": corr(soft[va], true[va]).mean(),
                     "own": corr(own[va], true[va]).mean(), "weights": head.weights.detach().numpy().round(3).tolist()})
        if args.cross_fit:
            utils.save_json(args.out / f"head_fold{f}.json", {**head.to_record(args.own_smooth),
                                                               "training": {"without_fold": f, **fit}})
    table = pd.DataFrame(rows)
    print("histogram correlation on held-out folds of train photos:")
    print(table.round(4).to_string(index=False))
    head = HueHead(prior)
    losses = fit_hue_head(head, soft, own, true, space=space, **fit)
    w = head.weights.detach().numpy()
    print(f"all crops: loss {losses[0]:.4f} -> {losses[-1]:.4f}; weights prior/soft/own {w.round(3).tolist()}")
    record = {**head.to_record(args.own_smooth), "training": {"crops": int(len(true)), "photos": int(len(photos)), "scale": list(args.scale),
                               "seed": args.seed, **fit, "space": "angle" if args.angle_space else "opencv-hue",
                               "excluded_validation_only": args.exclude_validation_only,
                               "unseen_only": args.unseen_only,
                               "cross_fit": str(args.cross_fit) if args.cross_fit else None,
                               "fold_correlation": table[["head", "prior"]].mean().round(4).to_dict(),
                               "command": "python tools/fit_hue_head.py " + " ".join(argv or sys.argv[1:])}}
    utils.save_json(args.out / "head.json", record)
    if args.save:
        utils.update_inference_config(args.weights / "color", hue_head=record)
        print(f"saved the head into {args.weights / 'color.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
