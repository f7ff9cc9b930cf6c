"""Holes that are not the competition's polygons, and photos with no hole at all, on a held-out folder.

Three sets are made of the folder's crops (`tools/build_heldout.py`): `polygons` (its own damaged inputs and true
masks), `strokes` (each crop's gray truth damaged afresh with free-form strokes, `DamageConfig(stroke_share=1)`,
seeded by the crop's index, so every run and every net sees the same strokes) and `undamaged` (the gray truth
itself). For the mask step of each weights folder (`--weights`, and `--candidate`, e.g. a fine-tune with strokes
mixed in) it reports, per set: the refined mask's IoU with the true hole (and the raw network's, probability > 0.5),
the holes missed (nothing predicted; or less than half of the hole found) and, on `undamaged`, the false holes (any
pixel predicted). Each is given with the weights' stored refinement and with its minimum-hole rule off
(`min_confident_area`, `min_hole_value_share` and `min_hole_prob` 0), and each net's IoU is paired over photos
against the reference's (each photo's crops averaged first; 95% intervals). With `--inpaint` the inpainter of
`--weights` and of each candidate that has one fills the stroke holes (true mask), each over the pre-fill its
weights record, against OpenCV Telea: the metric's masked SSIM of the luminance, paired over photos. `--sweep`
prints the false and missed holes of every net and set over a grid of the rule's thresholds (to choose them on a
validation folder: `tools/build_heldout.py corpus valset --validation-only`). `--colour` restores each stroke crop
(true mask) and the same crop undamaged with the whole pipeline, natural colours, and reports the chroma the damage
changed in the hole, in a 6 px ring around it and elsewhere, and the stroke crops' score. Network probabilities are
cached in --out, by the hashes of the mask net and of the inputs.

    python research/stroke_benchmark.py valset --weights weights --candidate runs/mask_strokes --sweep \
        --out runs/strokes_val
    python research/stroke_benchmark.py heldout --weights weights --candidate runs/mask_strokes --inpaint \
        --out runs/strokes
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

SETS = ("polygons", "strokes", "undamaged")


def interval(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half)


def stroke_damage(gray: np.ndarray, index: int, seed: int):
    """The stroke damage of crop `index`: the same for every run and every net."""
    import utils

    dmg = utils.sample_damage(np.random.default_rng([seed, index]), utils.DamageConfig(stroke_share=1.0))
    return utils.apply_damage(gray, dmg), dmg.mask


def load_sets(data: Path, limit: int | None, seed: int) -> tuple[pd.DataFrame, dict]:
    """The folder's manifest and {set: {name: (input gray, true mask or None)}}."""
    import utils

    man = pd.read_csv(data / "manifest.csv")
    if "split" in man.columns:          # the sample dataset's manifest lists its train crops too
        man = man[man.split == "test"]
    man = man.reset_index(drop=True)[:limit]
    sets = {s: {} for s in SETS}
    for i, name in enumerate(tqdm(man["name"], desc="reading", leave=False)):
        clean = utils.gray_of(utils.read_image(data / "test_gt" / name, "RGB"))
        sets["polygons"][name] = (np.asarray(utils.read_image(data / "test_input" / name, "L")),
                                  np.asarray(utils.read_image(data / "test_mask" / name, "L")) > 0)
        sets["strokes"][name] = stroke_damage(clean, i, seed)
        sets["undamaged"][name] = (clean, None)
    return man, sets


def probabilities(weights: Path, sets: dict, cache: Path) -> tuple[dict, object]:
    """{set: {name: float16 hole probability}} of a weights folder's mask net (cached by the hashes of its file and
    of the set's inputs), and its RefineConfig."""
    import utils
    from utils.inference.mask_refine import RefineConfig
    from utils.inference.pipeline import mask_probability

    net, cfg = utils.load_model(weights / "mask", "cpu")
    inference = cfg.get("inference", {})
    refine = RefineConfig.from_dict(inference["refine"]) if "refine" in inference else RefineConfig()
    out = {}
    digest = hashlib.sha256((weights / "mask.safetensors").read_bytes()).hexdigest()[:12]
    for s, items in sets.items():
        names = list(items)
        inputs = hashlib.sha256(b"".join(items[n][0].tobytes() for n in names)).hexdigest()[:12]
        path = cache / f"probs_{digest}_{s}_{inputs}.npz"
        if path.is_file():
            stored = np.load(path)
            if list(stored["names"]) == names:
                out[s] = {n: stored[n] for n in names}
                continue
        probs = {}
        for k in tqdm(range(0, len(names), 4), desc=f"{weights.name}: {s}", leave=False):
            batch = names[k:k + 4]
            for n, p in zip(batch, mask_probability(net, [items[n][0] for n in batch], inference.get("size", 256))):
                probs[n] = p.astype(np.float16)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, names=np.asarray(names), **probs)
        out[s] = probs
    return out, refine


def mask_rows(label: str, sets: dict, probs: dict, refine, photos: dict) -> list[dict]:
    """One row per (set, crop): the refined mask's size, IoU and recall, and the raw network's IoU."""
    from utils.inference.mask_refine import mask_stats, refine_mask

    rows = []
    for s, items in sets.items():
        for name, (gray, true) in items.items():
            p = probs[s][name].astype(np.float32)
            pred = refine_mask(gray, p, refine)
            row = {"net": label, "set": s, "name": name, "photo": photos[name], "area": int(pred.sum())}
            if true is not None:
                row.update({k: v for k, v in mask_stats(pred, true).items() if k in ("iou", "recall")})
                row["iou_raw"] = mask_stats(p > 0.5, true)["iou"]
            rows.append(row)
    return rows


def summarise(table: pd.DataFrame, reference: str) -> dict:
    """Per (net, set): mean IoU (refined, raw) with intervals, missed and false holes; the paired difference of
    each net's refined IoU against `reference` over photos."""
    out = {}
    for (net, s), d in table.groupby(["net", "set"], sort=False):
        r = {"crops": len(d), "photos": int(d.photo.nunique())}
        if s == "undamaged":
            r["false_holes"] = int((d.area > 0).sum())
            r["no_false_hole_share"] = float((d.area == 0).mean())
            r["false_hole_px_median"] = float(d.area[d.area > 0].median()) if (d.area > 0).any() else 0.0
        else:
            per_photo = d.groupby("photo")[["iou", "iou_raw"]].mean()
            r["iou"], r["iou_ci95"] = interval(per_photo.iou)
            r["iou_raw"], r["iou_raw_ci95"] = interval(per_photo.iou_raw)
            r["missed_empty"] = int((d.area == 0).sum())
            r["missed_half"] = int((d.recall < 0.5).sum())
            ref = table[(table.net == reference) & (table.set == s)].groupby("photo").iou.mean()
            if net != reference:
                r["iou_vs_reference"], r["iou_vs_reference_ci95"] = interval(per_photo.iou - ref[per_photo.index])
        out[f"{net} | {s}"] = r
    return out


def print_summary(summary: dict, reference: str) -> None:
    for key, r in summary.items():
        if "false_holes" in r:
            print(f"  {key:58s} false holes {r['false_holes']:3d} of {r['crops']} "
                  f"({100 * (1 - r['no_false_hole_share']):.1f}%), median {r['false_hole_px_median']:.0f} px")
        else:
            vs = (f"   vs {reference}: {r['iou_vs_reference']:+.4f} +- {r['iou_vs_reference_ci95']:.4f}"
                  if "iou_vs_reference" in r else "")
            print(f"  {key:58s} IoU {r['iou']:.4f} +- {r['iou_ci95']:.4f} (raw {r['iou_raw']:.4f})   missed "
                  f"{r['missed_empty']} empty, {r['missed_half']} under half{vs}")


NO_RULE = {"min_confident_area": 0, "min_hole_value_share": 0.0, "min_hole_prob": 0.0}
# what the rule's fields compare (utils.inference.mask_refine.hole_evidence: RefineConfig field)
EVIDENCE = {"confident_area": "min_confident_area", "value_share": "min_hole_value_share",
            "mean_prob": "min_hole_prob"}


def sweep(sets: dict, nets: dict, grid: dict) -> pd.DataFrame:
    """False holes (undamaged) and missed holes (nothing predicted / under half found) on the damaged sets, for
    each combination of the rule's thresholds in `grid` ({field: values}) and each net."""
    import itertools

    from utils.inference.mask_refine import hole_evidence, refine_mask

    rows = []
    for label, (probs, refine) in nets.items():
        base = replace(refine, **NO_RULE)
        found = []          # the rule only empties a mask: refine once without it, then apply each threshold
        for s, items in sets.items():
            for name, (gray, true) in items.items():
                p = probs[s][name].astype(np.float32)
                m = refine_mask(gray, p, base)
                recall = float((m & true).sum() / true.sum()) if true is not None else 0.0
                found.append((s, hole_evidence(gray, p, m) if m.any() else None, recall))
        for values in itertools.product(*grid.values()):
            rule = dict(zip(grid, values))
            row = {"net": label, **rule}
            for s in sets:
                kept = [(e is not None and all(e[k] >= rule[f] for k, f in EVIDENCE.items()), r)
                        for t, e, r in found if t == s]
                if s == "undamaged":
                    row["false_holes"] = sum(k for k, _ in kept)
                else:
                    row[f"{s}_missed_empty"] = sum(not k for k, _ in kept)
                    row[f"{s}_missed_half"] = sum((not k) or r < 0.5 for k, r in kept)
            rows.append(row)
    return pd.DataFrame(rows)


def inpaint_rows(folders: dict, sets: dict, photos: dict) -> pd.DataFrame:
    """Masked SSIM of the stroke holes' luminance (true mask): Telea, and the inpainter of each weights folder of
    `folders` ({folder: label}) over the pre-fill its weights record (method 'inpainter, <label>')."""
    import utils
    from utils.core.metric import masked_ssim_term
    from utils.inference.prefills import prefill

    nets = {}
    for folder, label in folders.items():
        net, config = utils.load_model(folder / "inpaint", "cpu")
        nets[f"inpainter, {label}"] = (net, config.get("inference", {}).get("prefill", "telea"))
    rows = []
    for name, (gray, true) in tqdm(sets["strokes"].items(), desc="inpaint", leave=False):
        truth = np.repeat(sets["undamaged"][name][0][..., None], 3, -1)
        fills = {"Telea": prefill(gray, true, "telea")}
        fills.update({m: utils.inpaint(net, [gray], [true], prefill_method=start)[0]
                      for m, (net, start) in nets.items()})
        for method, fill in fills.items():
            value, _ = masked_ssim_term(truth, np.repeat(fill[..., None], 3, -1), true)
            rows.append({"method": method, "name": name, "photo": photos[name], "masked_ssim": value})
    return pd.DataFrame(rows)


def colour_rows(folders: dict, sets: dict, photos: dict, data: Path) -> pd.DataFrame:
    """What the damage leaves in the colours: each weights folder of `folders` ({folder: label}, natural colours)
    restores each stroke crop (its true mask given) and the same crop undamaged (an empty mask given); per crop, the
    chroma the damage changed (|Cb| + |Cr|, 0-255) in the hole, in a ring of 6 px around it and elsewhere, and the
    competition score of the stroke crop's restoration."""
    import cv2

    import utils
    from utils.inference.color import rgb_to_cbcr_np

    rows = []
    ring_kernel = np.ones((13, 13), np.uint8)
    for folder, label in folders.items():
        restorer = utils.Restorer.from_dir(folder, device="cpu")
        for name, (gray, true) in tqdm(sets["strokes"].items(), desc=f"{label}: colour", leave=False):
            undamaged = sets["undamaged"][name][0]
            damaged_out, undamaged_out = (r.restored for r in restorer.restore_batch(
                [gray, undamaged], [true, np.zeros_like(true)]))
            change = np.abs(rgb_to_cbcr_np(damaged_out) - rgb_to_cbcr_np(undamaged_out)).sum(-1) * 255
            ring = cv2.dilate(true.astype(np.uint8), ring_kernel).astype(bool) & ~true
            truth = utils.read_image(data / "test_gt" / name, "RGB")
            rows.append({"net": label, "name": name, "photo": photos[name], "hole": float(change[true].mean()),
                         "ring": float(change[ring].mean()), "elsewhere": float(change[~true & ~ring].mean()),
                         "score": utils.score_image(truth, damaged_out, true)["score"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a held-out folder (tools/build_heldout.py)")
    ap.add_argument("--weights", type=Path, default=Path("weights"), help="the reference weights (default weights)")
    ap.add_argument("--candidate", type=Path, nargs="*", default=[], help="more weights folders (a mask.* each)")
    ap.add_argument("--out", type=Path, default=Path("runs/strokes"))
    ap.add_argument("--seed", type=int, default=2024, help="of the stroke damage")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--inpaint", action="store_true", help="also the inpainters (of --weights and of each candidate "
                    "that has one) against Telea on the stroke holes")
    ap.add_argument("--colour", action="store_true", help="also the chroma that the stroke damage leaves in the "
                    "colours (the whole pipeline of --weights and of each full candidate, natural colours)")
    ap.add_argument("--sweep", action="store_true", help="false and missed holes over a grid of the rule's thresholds")
    args = ap.parse_args(argv)
    for folder in (args.data, args.weights, *args.candidate):
        if not folder.is_dir():
            ap.error(f"{folder}: not a folder")
    for need in ("manifest.csv", "test_input", "test_gt", "test_mask"):
        if not (args.data / need).exists():
            ap.error(f"{args.data / need}: not found (a held-out folder from tools/build_heldout.py has it)")
    import torch

    torch.set_num_threads(2)
    man, sets = load_sets(args.data, args.limit, args.seed)
    photos = dict(zip(man["name"], man["source"]))
    labels = {args.weights: args.weights.name}
    for folder in args.candidate:       # each net its own label: the folder's name, else its path
        labels[folder] = folder.name if folder.name not in labels.values() else str(folder)
    nets = {label: probabilities(folder, sets, args.out) for folder, label in labels.items()}
    rows = []
    for label, (probs, refine) in nets.items():
        rows += mask_rows(label, sets, probs, refine, photos)
        off = replace(refine, **NO_RULE)
        rows += mask_rows(f"{label}, no minimum hole", sets, probs, off, photos)
    table = pd.DataFrame(rows)
    reference = labels[args.weights]
    summary = summarise(table, reference)
    print(f"{len(man)} crops of {len(set(photos.values()))} photos in {args.data}; strokes seeded {args.seed}")
    print_summary(summary, reference)
    result = {"data": str(args.data), "crops": len(man), "stroke_seed": args.seed, "masks": summary,
              "refine": {label: refine.to_dict() for label, (_, refine) in nets.items()}}
    if args.inpaint:
        folders = {f: label for f, label in labels.items() if (f / "inpaint.safetensors").is_file()}
        ssim = inpaint_rows(folders, sets, photos)
        per_photo = ssim.groupby(["method", "photo"]).masked_ssim.mean().unstack(0)
        result["stroke_holes"] = {}
        print("stroke holes (true mask), masked SSIM of the luminance, paired over photos against Telea:")
        for method in per_photo.columns:
            mean, half = interval(per_photo[method])
            d, h = interval(per_photo[method] - per_photo["Telea"])
            result["stroke_holes"][method] = {"masked_ssim": mean, "ci95": half, "vs_telea": d, "vs_telea_ci95": h}
            versus = f"   {d:+.4f} +- {h:.4f}" if method != "Telea" else ""
            print(f"  {method:<40} {mean:.4f} +- {half:.4f}{versus}")
    if args.colour:
        full = {f: label for f, label in labels.items()
                if all((f / f"{stage}.safetensors").is_file() for stage in ("mask", "color", "inpaint"))}
        colour = colour_rows(full, sets, photos, args.data)
        per_photo = colour.groupby(["net", "photo"])[["hole", "ring", "elsewhere", "score"]].mean()
        result["stroke_colour"] = {}
        print("stroke crops (true mask), the chroma the damage changed (|Cb| + |Cr|, 0-255; per photo) and the "
              "score:")
        for net, d in per_photo.groupby(level="net", sort=False):
            r = result["stroke_colour"][net] = {}
            for k in ("hole", "ring", "elsewhere", "score"):
                r[k], r[f"{k}_ci95"] = interval(d[k])
            print(f"  {net:<24} hole {r['hole']:.2f} +- {r['hole_ci95']:.2f}   ring of 6 px {r['ring']:.2f} +- "
                  f"{r['ring_ci95']:.2f}   elsewhere {r['elsewhere']:.2f} +- {r['elsewhere_ci95']:.2f}   score "
                  f"{r['score']:.4f} +- {r['score_ci95']:.4f}")
        args.out.mkdir(parents=True, exist_ok=True)
        colour.to_csv(args.out / "colour_per_crop.csv", index=False)
    if args.sweep:
        grid = sweep(sets, nets, {"min_confident_area": (0, 50, 100, 200, 400), "min_hole_value_share": (0.0, 0.5),
                                  "min_hole_prob": (0.0, 0.4, 0.6)})
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(grid.to_string(index=False))
        grid.to_csv(args.out / "sweep.csv", index=False)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "per_crop.csv", index=False)
    (args.out / "stroke_benchmark.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'stroke_benchmark.json'} and {args.out / 'per_crop.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
