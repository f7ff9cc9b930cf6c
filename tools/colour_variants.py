"""Score colour post-processing variants on a set with truth (the validation-only set, never the held-out
photos), to choose the shipped settings. The raw pipeline output (every colour post-process off), its masks and
the colour net's bin mass and entropy are computed once per order and cached in --cache.

    python tools/colour_variants.py --data-dir valset --head runs/hue_head/head.json --json runs/colour/validation.json

Several --data-dir (each with its own --weights and --head, or one of each for all) are scored as one pooled set:
the cross-fitted validation of tools/cross_fit_colour.py, where each fold's photos are restored by the colour net
that did not train on them.

A variant is `key=value` pairs joined by ';': hue=none|own<s>|prior|head|oracle|pown<a> (own<s>: the image's own histogram smoothed
by s degrees; pown<a>: prior x own^a),
kh=1|0 (keep the hole out of the remap), chroma=radius/eps/0/net|ring (guided-filter smoothing, hole chroma),
pd=<s> (paler where unsure, after the remap), gain=<g> (all chroma times g), hc=<c> (the last pass that realises
the target in the metric's OpenCV hue bins, moving pixels with chroma above c; HueConfig.hsv_pass).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["hue=none", "hue=own8", "hue=prior", "hue=oracle", "hue=pown0.25", "hue=head", "hue=head;kh=0",
           "hue=head;chroma=0/1e-3/0/ring", "hue=head;chroma=8/1e-3/0/ring", "hue=head;chroma=16/1e-2/0/ring",
           "hue=head;chroma=32/1e-2/0/ring", "hue=head;chroma=16/1e-2/0/ring;pd=0.5",
           "hue=head;chroma=16/1e-2/0/ring;pd=1.0", "hue=head;chroma=16/1e-2/0/ring;gain=0.6",
           "hue=head;chroma=32/1e-2/0/ring;pd=0.5"]


def cache(data_dir: Path, weights: Path, order: str, path: Path) -> dict:
    import utils
    from utils.chroma import net_bin_probabilities
    from utils.color_eval import raw_restorer

    if path.is_file():
        return dict(np.load(path))
    names = sorted(p.name for p in (data_dir / "test_gt").glob("*.png"))
    grays = [utils.read_image(data_dir / "test_input" / n, "L", 512) for n in names]
    r = raw_restorer(utils.Restorer.from_dir(weights, order=order))
    out = {"restored": [], "mask": [], "mass": [], "entropy": []}
    for s in range(0, len(names), 8):
        res = r.restore_batch(grays[s:s + 8])
        out["restored"] += [x.restored for x in res]
        out["mask"] += [x.mask for x in res]
        if order == "mask-colorize-inpaint":
            seen, seen_m = grays[s:s + 8], [x.mask for x in res]
        else:
            seen, seen_m = [utils.gray_of(x.restored) for x in res], [np.zeros_like(x.mask) for x in res]
        m, e = net_bin_probabilities(r.color_net, seen, seen_m, r.sizes["color"])
        out["mass"] += list(m)
        out["entropy"] += list(e.astype(np.float16))
    out = {k: np.stack(v) for k, v in out.items()}
    out["gts"] = np.stack([utils.read_image(data_dir / "test_gt" / n, "RGB", 512) for n in names])
    out["tmasks"] = np.stack([utils.read_image(data_dir / "test_mask" / n, "L", 512) > 0 for n in names])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def score_variant(C: dict, restorer, head, spec: str, prior: list, per_image: list | None = None,
                  hole_rings: list | None = None) -> dict:
    import utils
    from utils.chroma import ChromaConfig, desaturate_unsure, hole_ring_distance, rgb_to_cbcr_np
    from utils.color import compose_rgb, pil_luma
    from utils.hue import HueConfig, _smooth_circular, angle_histogram

    opts = dict(kv.split("=") for kv in spec.split(";"))
    parts = opts.get("chroma", "0/1e-3/0/net").split("/")
    restorer.chroma = ChromaConfig(int(parts[0]), float(parts[1]), float(parts[2]), parts[3])
    hue, kh = opts.get("hue", "none"), opts.get("kh", "1") == "1"
    preds = []
    for i in range(len(C["gts"])):
        rgb, m = C["restored"][i], C["mask"][i]
        restorer.hue_head = head if hue == "head" else None
        if hue == "none":
            restorer.hue = HueConfig()
        elif hue.startswith("own"):       # the image's own histogram smoothed (the shipped setting before: own8)
            restorer.hue = HueConfig(0.0, float(hue[3:]), kh, prior)
        elif hue in ("prior", "head"):
            restorer.hue = HueConfig(1.0, 0.0, kh, prior)
        elif hue == "oracle":
            restorer.hue = HueConfig(1.0, 0.0, False, angle_histogram(C["gts"][i]).tolist())
        elif hue.startswith("pown"):
            t = np.asarray(prior) * (_smooth_circular(angle_histogram(rgb), 8) + 1e-4) ** float(hue[4:])
            restorer.hue = HueConfig(1.0, 0.0, kh, list(t / t.sum()))
        restorer.hue = replace(restorer.hue, hsv_pass=float(opts.get("hc", 0)))
        x = restorer.finish(rgb, m, C["mass"][i], C["entropy"][i].astype(np.float32))
        if "pd" in opts:
            x = desaturate_unsure(x, C["entropy"][i].astype(np.float32), float(opts["pd"]), len(C["mass"][i]))
        if "gain" in opts:
            x = compose_rgb(pil_luma(x).astype(np.uint8), rgb_to_cbcr_np(x) * float(opts["gain"]) + 0.5)
        preds.append(x)
    table = utils.score_arrays(list(C["gts"]), preds, list(C["tmasks"]))
    s = utils.summarize(table)
    rings = [hole_ring_distance(x, m) for x, m in zip(preds, C["tmasks"])]
    s["hole_ring"] = float(np.nanmean(rings))
    if hole_rings is not None:
        hole_rings.append(rings)
    if per_image is not None:
        per_image.append(table[["score", "ssim", "masked_ssim", "hue"]].to_numpy())
    return s


def paired(per_image: list, photos: np.ndarray, ref: int) -> list[dict]:
    """Each variant minus the `ref`-th, averaged per photo (crops of one photo are not independent): the mean
    paired difference of score and hue over photos and its standard error (std over photos / sqrt(photos))."""
    out = []
    for v in per_image:
        d = v - per_image[ref]
        by_photo = np.stack([d[photos == p].mean(0) for p in np.unique(photos)])
        se = by_photo.std(0, ddof=1) / np.sqrt(len(by_photo))
        out.append({"d_score": float(by_photo[:, 0].mean()), "se_score": float(se[0]),
                    "d_hue": float(by_photo[:, 3].mean()), "se_hue": float(se[3])})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, nargs="+", default=[Path("valset")],
                    help="sets with truth (test_input/, test_gt/, test_mask/, manifest.csv); several are pooled")
    ap.add_argument("--weights", type=Path, nargs="+", default=[ROOT / "weights"], help="one, or one per --data-dir")
    ap.add_argument("--head", type=Path, nargs="+", required=True, help="a head record (tools/fit_hue_head.py writes "
                    "head.json); one, or one per --data-dir")
    ap.add_argument("--order", default="mask-colorize-inpaint")
    ap.add_argument("--variants", nargs="*", default=DEFAULT)
    ap.add_argument("--cache", type=Path, default=Path("runs/colour"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--paired", nargs="*", default=[], help="variants (among --variants): every row also gets its mean "
                    "paired difference to each over photos, with the standard error (d_score, se_score, d_hue, se_hue; "
                    "suffixed _1, _2, ... after the first)")
    args = ap.parse_args(argv)
    import pandas as pd
    import torch

    import utils
    from utils.hue_head import HueHead

    n = len(args.data_dir)
    for name in ("weights", "head"):
        if len(getattr(args, name)) not in (1, n):
            ap.error(f"--{name}: give one, or one per --data-dir ({n})")
    if len({d.name for d in args.data_dir}) < n:
        ap.error("--data-dir: the sets need different folder names (their caches are named after them)")
    weights = args.weights * n if len(args.weights) == 1 else args.weights
    heads = args.head * n if len(args.head) == 1 else args.head
    torch.set_num_threads(1)
    sets = []
    for d, w, h in zip(args.data_dir, weights, heads):
        C = cache(d, w, args.order, args.cache / f"cache_{d.name}_{args.order}.npz")
        restorer = utils.Restorer.from_dir(w, order=args.order)
        head = HueHead.from_record(restorer.hue.prior, json.loads(h.read_text()), restorer.color_net.bin_centers.numpy())
        sets.append((C, restorer, head, list(restorer.hue.prior)))
    rows, per_image = [], []
    for v in args.variants:
        parts, rings = [], []
        for C, restorer, head, prior in sets:
            score_variant(C, restorer, head, v, prior, parts, rings)
        terms = np.concatenate(parts)
        row = dict(zip(("score", "ssim", "masked_ssim", "hue"), terms.mean(0).tolist()))
        row["hole_ring"] = float(np.nanmean(np.concatenate(rings)))
        per_image.append(terms)
        rows.append({"variant": v.replace("|", "/"), **row})
        print(rows[-1], flush=True)
    names, photos = [], []
    for d in args.data_dir:
        man = pd.read_csv(d / "manifest.csv")
        own = sorted(p.name for p in (d / "test_gt").glob("*.png"))
        names += own if n == 1 else [f"{d.name}/{x}" for x in own]
        photos += list(man.set_index("name").loc[own, "source"])
    photos = np.asarray(photos)
    if args.paired:
        for j, ref in enumerate(args.paired):
            sfx = f"_{j}" if j else ""
            for r, d in zip(rows, paired(per_image, photos, args.variants.index(ref))):
                r.update({f"vs{sfx}": ref, **{k + sfx: v for k, v in d.items()}})
        with pd.option_context("display.width", 250):
            print(pd.DataFrame(rows).round(4).to_string(index=False))
    if args.json:
        utils.save_json(args.json, {"data": [str(d) for d in args.data_dir] if n > 1 else str(args.data_dir[0]),
                                    "images": len(names), "photos": int(len(set(photos))),
                                    "order": args.order, "rows": [{k: (round(v, 4) if isinstance(v, float) else v)
                                                                   for k, v in r.items()} for r in rows],
                                    # per image (names, photos in that order): score, ssim, masked_ssim, hue, so that
                                    # runs of other weights on the same set can be compared pairwise
                                    "names": names, "image_photos": list(photos),
                                    "per_image": {r["variant"]: np.round(v, 5).tolist() for r, v in zip(rows, per_image)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
