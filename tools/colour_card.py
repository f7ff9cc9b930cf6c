"""The model card's colour section (issue 12): before/after colour benchmark rows on held-out photos and a
before/after grid of the same photos, written into weights/README.md (the section is replaced when present).

    python benchmark.py --data-dir heldout --colour --json runs/colour/after.json
    python benchmark.py --data-dir heldout --colour --weights OLD_WEIGHTS --json runs/colour/before.json
    python tools/colour_card.py --data-dir heldout --before-weights OLD_WEIGHTS \
        --before runs/colour/before.json --after runs/colour/after.json --validation runs/colour/validation.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Colour: per-photo hue, coherent chroma, natural holes (issue 12)"
GRID = "colour_before_after.jpg"


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join([df.index.name or ""] + cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + ["" if pd.isna(v) else f"{v:.4f}" if isinstance(v, float) else str(v)
                                                    for v in row]) + " |")
    return "\n".join(lines)


def grid(data_dir: Path, names, before, after, out: Path, thumb: int = 192,
         titles=("damaged input", "before (shipped)", "after (issue 12)", "truth")) -> None:
    """Rows: damaged input, before, after, truth, for the same held-out photos."""
    import cv2

    import utils

    rows = []
    for n in names:
        gray = utils.read_image(data_dir / "test_input" / n, "L", 512)
        gt = utils.read_image(data_dir / "test_gt" / n, "RGB", 512)
        cells = [utils.gray_copy(gray), before.restore(gray), after.restore(gray), gt]
        rows.append(np.concatenate([cv2.resize(c, (thumb, thumb), interpolation=cv2.INTER_AREA) for c in cells], 1))
    img = np.concatenate(rows, 0)
    head = np.full((28, img.shape[1], 3), 255, np.uint8)
    for i, t in enumerate(titles):
        cv2.putText(head, t, (i * thumb + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.concatenate([head, img], 0), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"{out}: JPEG encoding failed")
    from utils.files import write_bytes_atomic
    write_bytes_atomic(out, buf.tobytes())


def section(before: dict, after: dict, validation: dict | None, n_photos: int, color_cfg: dict) -> str:
    cols = ["score", "ssim", "masked_ssim", "hue", "hole_ring"]
    rows = []
    for tag, res in (("before", before), ("after", after)):
        for method, r in res["colour"].items():
            if method == "truth" and tag == "after":
                continue
            rows.append({"": f"{method}" if method == "truth" else f"{tag}: {method}", **{c: r.get(c, np.nan) for c in cols}})
    t = pd.DataFrame(rows).set_index("")
    ms_b, ms_a = (r["results"]["pipeline (ours)"]["ms_per_image"] for r in (before, after))
    inf = color_cfg["inference"]
    head = inf.get("hue_head", {})
    tr = head.get("training", {})
    text = f"""{SECTION}

Held-out set: `python tools/build_heldout.py corpus heldout --per-photo 5` — {before['images']} crops (5 per photo, random
positions, short side 512 x 1.0-2.5, flips, competition polygon damage) of the {n_photos} photos of the corpus's test
split, which no stage trained or validated on. `python benchmark.py --data-dir heldout --colour` (before: the
weights of main before this change). hole_ring: distance between the mean chroma of the hole and of a 16 px ring
around it (0-255 Cb/Cr units), on the true hole; the truth's row is what natural holes look like. The JSON behind
these tables: `colour_results.json`.

{md_table(t)}

Whole pipeline time per 512x512 image (median of single-image calls, CPU, 2 threads, on a machine shared with other
jobs): before {ms_b:.0f} ms, after {ms_a:.0f} ms.

What changed (all post-processing on the exact input luminance; the three networks are unchanged):
- **Per-photo hue distribution** (`utils.hue_head.HueHead`): a log-linear combination, per hue bin, of the
  training photos' mean histogram (the prior), the colour net's soft histogram (its per-pixel chroma-bin
  probabilities summed over the image and spread onto the angle circle) and the decoded image's own histogram,
  with weights that move with the net's confidence (1 - entropy of the soft histogram); trained on the
  metric's own term, 1 - Pearson correlation of the histograms taken to OpenCV's 180 hue bins, on
  {tr.get('crops')} random crops (scales {tr.get('scale')}, flips) of {tr.get('photos')} train photos
  (`{tr.get('command')}`; {tr.get('steps')} Adam steps, lr {tr.get('lr')}, bias L2 {tr.get('bias_l2')}).
  Photo-grouped 4-fold correlation on the train photos: head {tr.get('fold_correlation', {}).get('head')},
  prior {tr.get('fold_correlation', {}).get('prior')}. Realised by `match_hue` (the monotone remap of chroma angles)
  with the predicted histogram as target. Stored in color.json (`inference.hue_head`).
- **Coherent chroma** (`utils.chroma`): chroma smoothed by a guided filter on the luminance (radius
  {inf['chroma']['smooth_radius']} px, eps {inf['chroma']['smooth_eps']}), so colour follows luminance edges; after the remap, each pixel's chroma
  scaled by 1 - {inf['chroma']['unsure_desat']} x (entropy of the net's bin distribution / log 169): pale where the net is unsure.
- **Natural holes**: the hole's chroma is carried in from its ring (OpenCV Telea on Cb and Cr; luma kept).
- **The target in the metric's own bins** (`utils.hue.match_hsv_hue`, `inference.hue.hsv_pass` =
  {inf['hue'].get('hsv_pass', 0.0)}; 0: off): after all of the above, the pixels with chroma above hsv_pass/255 are remapped once
  more so that, with the pale pixels (whose uint8 hues are quantised) left as they are, the image's OpenCV hue
  histogram follows the predicted one.
- Settings chosen on a separate validation set, never on the held-out photos: `python tools/build_heldout.py
  corpus valset --per-photo 5 --validation-only` (the train photos whose crops all fell in the notebooks'
  validation split, so no network trained on them; the head used there and shipped was trained without them,
  `--exclude-validation-only`), scored by `tools/colour_variants.py`.
"""
    if validation:
        v = pd.DataFrame(validation["rows"]).set_index("variant")
        text += f"\nValidation set ({validation['images']} crops of {validation['photos']} photos), order {validation['order']}:\n\n{md_table(v)}\n"
    b, a = before["colour"], after["colour"]
    blind = a["blind guess (prior remap)"]["hue"]
    text += f"""
Targets (issue 12) on the held-out photos: hue >= 0.50 and >= blind guess + 0.05 ({blind + 0.05:.3f}) -> **{a['pipeline']['hue']:.4f}**
(not met); score >= 0.60 -> **{a['pipeline']['score']:.4f}** (not met; before {b['pipeline']['score']:.4f}); hole colour like its
surroundings -> hole_ring **{a['pipeline']['hole_ring']:.2f}** (before {b['pipeline']['hole_ring']:.2f}, truth {a['truth']['hole_ring']:.2f}: met);
<= 1 s per image on 2 cores -> **{ms_a:.0f} ms** (met).

Reading: on the validation-only photos the head lifts hue from the shipped setting's 0.41 to 0.47 and the score by
0.03, but on the held-out photos (wallpapers and campus scenes, where the colour net's own bin probabilities
correlate with the truth less than the prior does) its hue only equals the shipped setting's (with the same chroma
post-processing the shipped setting falls to hue 0.342, score 0.530: `tools/colour_variants.py --data-dir heldout
--variants "hue=own8;chroma=32/1e-2/0.5/ring"`, measured after the choice was made); the score gain there comes from
SSIM and masked SSIM (smoother chroma, paler unsure pixels, holes coloured from their ring). The remap forces each photo's hues to cover the predicted histogram, which
in the grid gives some photos hues they do not have (pink or magenta patches on walls, trees, a tulip; a rainbow band
on a flat wall); a better per-photo prediction (more photos, a colour net trained on random crops, GPU) is the lever.
"""
    text += f"""
Before/after on the same held-out photos (columns: damaged input, before, after, truth): `{GRID}`.

![before/after]({GRID})
"""
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("heldout"))
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--before-weights", type=Path, required=True)
    ap.add_argument("--before", type=Path, default=None, help="benchmark JSON of the weights before (needed unless --grid-only)")
    ap.add_argument("--after", type=Path, default=None, help="benchmark JSON of the weights after (needed unless --grid-only)")
    ap.add_argument("--validation", type=Path, default=None)
    ap.add_argument("--grid-images", type=int, default=8)
    ap.add_argument("--grid-only", type=Path, default=None, metavar="NAME",
                    help="only write the before/after grid, as NAME in --weights (no card text, no benchmark JSON needed)")
    ap.add_argument("--grid-titles", nargs=2, default=("before (shipped)", "after (issue 12)"), metavar=("BEFORE", "AFTER"),
                    help="the grid's column titles of the two weights")
    args = ap.parse_args(argv)
    import utils

    if args.grid_only:
        man = pd.read_csv(args.data_dir / "manifest.csv")
        names = list(man.groupby("source").name.first().sort_values())[: args.grid_images]
        grid(args.data_dir, names, utils.Restorer.from_dir(args.before_weights), utils.Restorer.from_dir(args.weights),
             args.weights / args.grid_only, titles=("damaged input", *args.grid_titles, "truth"))
        print(f"wrote {args.weights / args.grid_only}")
        return 0

    if args.before is None or args.after is None:
        ap.error("--before and --after are needed (or --grid-only)")
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    validation = json.loads(args.validation.read_text()) if args.validation else None
    man = pd.read_csv(args.data_dir / "manifest.csv")
    # one crop of each of the first photos, so the grid shows different photos
    names = list(man.groupby("source").name.first().sort_values())[: args.grid_images]
    grid(args.data_dir, names, utils.Restorer.from_dir(args.before_weights), utils.Restorer.from_dir(args.weights),
         args.weights / GRID)
    cfg = json.loads((args.weights / "color.json").read_text())
    text = section(before, after, validation, man.source.nunique(), cfg)
    readme = args.weights / "README.md"
    card = readme.read_text()
    if SECTION in card:
        start = card.index(SECTION)
        end = card.find("\n## ", start + len(SECTION))
        card = card[:start] + text.rstrip() + "\n" + (card[end:] if end != -1 else "")
    else:
        at = card.find("## Known limits")
        card = card[:at] + text + "\n" + card[at:] if at != -1 else card + "\n" + text
    readme.write_text(card)
    print(f"wrote the colour section and {GRID} into {args.weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
