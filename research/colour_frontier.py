"""The colour post-process's trade-off between score and looks, on held-out photos with ground truth.

For a weights folder and a data folder in the competition layout (test_input/, test_gt/, test_mask/, test.csv;
tools/build_heldout.py writes one, with a manifest.csv naming each crop's source photo), the networks run once per
image (`Restorer.restore_batch(..., finish=False)`), then every colour setting is applied to the cached outputs
(`Restorer.finish`): the hue-remap strengths from natural (0) to the full remap (1), and the same with the remap's
change smoothed along the luminance (`HueConfig.edge_radius`), and the natural and the stored setting with the other
hole colour (the ring fill on or off, `Restorer.hole_colour`). For each setting it reports the score, SSIM, masked
SSIM, hue and the visible change (per image, the 95th percentile of CIEDE2000 between the natural output and this
one, on Lab; mean over images) and the hole's colour against its surroundings (hole_ring: distance between the
mean chroma of the predicted hole and of a 16 px ring around it, 0-255 Cb/Cr units; `utils.chroma.hole_ring_distance`),
and each one's paired difference from a baseline setting: per-image differences
averaged per photo (crops of one photo are not independent), mean over photos with a 95% t interval.

    python research/colour_frontier.py --weights weights --data-dir heldout --json runs/colour_frontier.json

--extra NAME=DIR adds the PNGs of another pipeline run on the same inputs (e.g. another checkout's restore.py
output) as a row. The masks the networks see are the predicted ones (what a submission gets); the score's masked
SSIM uses the true ones.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

import utils

TERMS = ("score", "ssim", "masked_ssim", "hue", "change95", "hole_ring")


def strengths_list(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}")
    return values


def paired(values: pd.DataFrame, base: str, photos: list[str]) -> pd.DataFrame:
    """values: one row per (setting, image) with TERMS columns -> per setting and term, the mean over photos of
    the per-photo mean difference from `base`, with a 95% t interval over photos."""
    rows = []
    base_v = values.xs(base, level="setting")
    n_photos = len(set(photos))
    for setting in values.index.get_level_values("setting").unique():
        d = values.xs(setting, level="setting")[list(TERMS)] - base_v[list(TERMS)]
        per_photo = d.groupby(np.asarray(photos)).mean()
        row = {"setting": setting}
        for term in TERMS:
            x = per_photo[term].to_numpy()
            m = float(x.mean())
            half = (
                float(stats.t.ppf(0.975, n_photos - 1) * x.std(ddof=1) / np.sqrt(n_photos)) if n_photos > 1 else np.nan
            )
            row.update({f"d_{term}": m, f"d_{term}_lo": m - half, f"d_{term}_hi": m + half})
        rows.append(row)
    return pd.DataFrame(rows).set_index("setting")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights", help="weights folder (mask, color, inpaint)")
    ap.add_argument(
        "--data-dir", required=True, help="held-out folder in the competition layout, with test_gt/ and test_mask/"
    )
    ap.add_argument(
        "--strengths",
        type=strengths_list,
        default=[0.0, 0.25, 0.5, 0.75, 1.0],
        help="hue-remap strengths to report (comma-separated, 0 = natural)",
    )
    ap.add_argument(
        "--edge-radius",
        type=int,
        default=32,
        help="the edge-aware variant's guided-filter radius (px at 512; 0: no edge-aware rows)",
    )
    ap.add_argument("--edge-eps", type=float, default=1e-2, help="the edge-aware variant's edge threshold")
    ap.add_argument(
        "--baseline",
        default=None,
        help="the setting the paired differences are taken against "
        "(default: the weights' own submission setting, 'score')",
    )
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also score the PNGs in DIR (same names as test_input/) as setting NAME",
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N test images")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--json", default=None, help="also write the table and the per-image values here")
    args = ap.parse_args(argv)

    data = Path(args.data_dir)
    extras = {}
    for item in args.extra:
        name, sep, folder = item.partition("=")
        if not sep or not name or not Path(folder).is_dir():
            print(f"error: --extra {item!r}: expected NAME=DIR with an existing folder", file=sys.stderr)
            return 2
        extras[name] = Path(folder)
    try:
        names, photo_of = utils.heldout_crops(data, ("test_input", "test_gt", "test_mask"), args.limit)
    except utils.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    photos = [photo_of[n] for n in names]

    restorer = utils.Restorer.from_dir(args.weights, device=args.device)
    if restorer.hue.prior is None:
        print(
            f"error: {args.weights}/color.json has no hue prior (inference.hue.prior): nothing to remap towards",
            file=sys.stderr,
        )
        return 2
    hole = restorer.hole_colour
    other_hole = next(h for h in utils.pipeline.HOLE_COLOURS if h != hole)
    settings = {}  # name -> (strength, edge radius, hole colour)
    for s in args.strengths:
        settings["natural" if s == 0 else f"remap {s:g}"] = (s, 0, hole)
        if args.edge_radius and s > 0:
            settings[f"remap {s:g}, edge-aware r{args.edge_radius}"] = (s, args.edge_radius, hole)
    stored = (restorer.hue.strength, restorer.hue.edge_radius, hole)
    if stored not in settings.values():
        settings["score (stored)"] = stored
    settings[f"natural, hole {other_hole}"] = (0.0, 0, other_hole)
    if stored[0] > 0:
        settings[f"score (stored), hole {other_hole}"] = (*stored[:2], other_hole)
    score_name = next(k for k, v in settings.items() if v == stored)
    baseline = args.baseline or score_name
    if baseline not in settings and baseline not in extras:
        print(
            f"error: --baseline {baseline!r} is not one of the settings: {list(settings) + list(extras)}",
            file=sys.stderr,
        )
        return 2

    rows = []
    for start in tqdm(range(0, len(names), args.batch_size), desc="restore + colour settings"):
        chunk = names[start : start + args.batch_size]
        grays = [utils.read_image(data / "test_input" / n, "L") for n in chunk]
        gts = [utils.read_image(data / "test_gt" / n, "RGB") for n in chunk]
        masks = [utils.read_image(data / "test_mask" / n, "L") > 0 for n in chunk]
        raw = restorer.restore_batch(grays, finish=False)
        for n, r, gt, m in zip(chunk, raw, gts, masks):
            outs = {}
            for name, (s, e, h) in settings.items():
                variant = restorer.with_colour(s)
                variant.hue = replace(variant.hue, edge_radius=e, edge_eps=args.edge_eps if e else variant.hue.edge_eps)
                variant.hole_colour = h
                outs[name] = variant.finish(r.restored, r.mask)
            for name, folder in extras.items():
                outs[name] = utils.read_image(folder / n, "RGB")
            natural = (
                outs["natural"] if "natural" in outs else restorer.with_colour("natural").finish(r.restored, r.mask)
            )
            for name, out in outs.items():
                rows.append(
                    {
                        "setting": name,
                        "name": n,
                        **utils.score_image(gt, out, m),
                        "change95": utils.visible_change(natural, out),
                        "hole_ring": utils.chroma.hole_ring_distance(out, r.mask),
                    }
                )
    values = pd.DataFrame(rows).set_index(["setting", "name"])
    order = list(settings) + list(extras)
    table = values.groupby(level="setting")[list(TERMS)].mean().loc[order]
    diffs = paired(values, baseline, photos).loc[order]
    n_photos = len(set(photos))

    print(
        f"data: {data}   images: {len(names)}   photos: {n_photos}   weights: {args.weights}   "
        f"stored submission setting: strength {stored[0]:g}, edge radius {stored[1]}, hole colour {hole}"
    )
    show = table.copy()
    for term in ("score", "hue", "change95"):
        show[f"d_{term} vs {baseline} [95% CI]"] = [
            f"{diffs.loc[k, f'd_{term}']:+.4f} "
            f"[{diffs.loc[k, f'd_{term}_lo']:+.4f}, {diffs.loc[k, f'd_{term}_hi']:+.4f}]"
            for k in show.index
        ]
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(show.round(4).to_string())
    print(
        "change95: per image, the 95th percentile of CIEDE2000 from the natural output; mean over images. "
        "hole_ring: hole-to-ring chroma distance. Differences: per-photo means, 95% t interval over photos."
    )
    if args.json:
        utils.save_json(
            args.json,
            {
                "data": str(data),
                "weights": str(args.weights),
                "images": len(names),
                "photos": n_photos,
                "baseline": baseline,
                "stored": {"strength": stored[0], "edge_radius": stored[1], "hole_colour": hole},
                "settings": {
                    k: {
                        "strength": v[0],
                        "edge_radius": v[1],
                        "edge_eps": args.edge_eps if v[1] else None,
                        "hole_colour": v[2],
                    }
                    for k, v in settings.items()
                }
                | {k: {"pngs": str(v)} for k, v in extras.items()},
                "table": table.round(5).to_dict(orient="index"),
                "paired": diffs.round(5).to_dict(orient="index"),
                "per_image": {
                    k: values.xs(k, level="setting")[list(TERMS)].round(5).to_dict(orient="list") for k in order
                },
                "names": names,
                "image_photos": photos,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
