"""How far a reference photo takes the colours: the score's hue term with each held-out crop's own truth as the
reference (`Restorer.with_guidance(reference=truth)`, the remap at full strength), against natural and score colours.

For a weights folder and a held-out folder in the competition layout (test_input/, test_gt/, test_mask/ and a
manifest.csv naming each crop's source photo; tools/build_heldout.py), the networks run once per image; the colour
post-process is then applied four ways: the colour net's own colours (`colour=0`: no remap, no fade), natural
colours (pale tints faded), score colours (the stored remap towards the training photos' mean), and the remap towards
the crop's own truth. For each, the mean of the competition's terms (`utils.metric.score_image`, with the true masks)
and the paired differences of the hue term and the score from natural colours, per-photo means with a 95% t interval
over photos. The truth as its own reference is the best a reference can do:
a user's reference of a similar scene gives less.

    python research/reference_hue.py --weights weights --data-dir heldout --json runs/reference_hue.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

import utils

SETTINGS = ("the net's own (colour 0)", "natural", "score", "own truth as reference")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights", help="weights folder (mask, color, inpaint)")
    ap.add_argument("--data-dir", required=True, help="held-out folder with test_input/, test_gt/, test_mask/")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test images")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--json", default=None, help="write the table and the per-image values here")
    args = ap.parse_args(argv)

    data = Path(args.data_dir)
    try:
        names, photos = utils.heldout_crops(data, ("test_input", "test_gt", "test_mask"), args.limit)
    except utils.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    natural = utils.Restorer.from_dir(args.weights, device="cpu", colour="natural")
    score, own = natural.with_colour("score"), natural.with_colour(0.0)

    rows = []
    for start in tqdm(range(0, len(names), args.batch_size), desc="restore + colour settings"):
        chunk = names[start:start + args.batch_size]
        grays = [utils.read_image(data / "test_input" / n, "L", size=utils.IMAGE_SIZE) for n in chunk]
        for n, r in zip(chunk, natural.restore_batch(grays, finish=False)):
            truth = utils.read_image(data / "test_gt" / n, "RGB", size=utils.IMAGE_SIZE)
            true_mask = utils.read_image(data / "test_mask" / n, "L", size=utils.IMAGE_SIZE) > 0
            outs = {"the net's own (colour 0)": own.finish(r.restored, r.mask),
                    "natural": natural.finish(r.restored, r.mask),
                    "score": score.finish(r.restored, r.mask),
                    "own truth as reference": natural.with_guidance(reference=truth).finish(r.restored, r.mask)}
            for setting, out in outs.items():
                rows.append({"setting": setting, "name": n, **utils.score_image(truth, out, true_mask)})
    values = pd.DataFrame(rows)
    table = values.groupby("setting")[["score", "ssim", "masked_ssim", "hue"]].mean().loc[list(SETTINGS)]
    n_photos = len(set(photos.values()))
    paired = {}
    base = values[values.setting == "natural"].set_index("name")
    for setting in SETTINGS:
        paired[setting] = {}
        for term in ("hue", "score"):
            d = values[values.setting == setting].set_index("name")[term] - base[term]
            per_photo = d.groupby(d.index.map(photos)).mean().to_numpy()
            half = (float(stats.t.ppf(0.975, n_photos - 1) * per_photo.std(ddof=1) / np.sqrt(n_photos))
                    if n_photos > 1 else np.nan)
            paired[setting][term] = {"d": float(per_photo.mean()), "half": half}
    for term in ("hue", "score"):
        table[f"d_{term} vs natural"] = [f"{paired[s][term]['d']:+.4f} +- {paired[s][term]['half']:.4f}"
                                         for s in table.index]
    print(f"data: {data}   images: {len(names)}   photos: {n_photos}   weights: {args.weights}")
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string())
    if args.json:
        utils.save_json(args.json, {"data": str(data), "weights": str(args.weights), "images": len(names),
                                    "photos": n_photos, "table": table[["score", "ssim", "masked_ssim", "hue"]]
                                    .round(5).to_dict(orient="index"), "paired": paired,
                                    "per_image": values.round(5).to_dict(orient="list"), "image_photos": photos})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
