"""Natural colours without confident blotches: how much clearly wrong colour is left at how much colour.

For a weights folder and a held-out folder in the competition layout (test_input/, test_gt/ and a manifest.csv
naming each crop's source photo; tools/build_heldout.py), the networks run once per image; the colour net's own
colours (the hole filled, its chroma continued from the ring, as the pipeline does) are then desaturated in several
ways, each a one-parameter family from the net's own colours (no change) to gray:

- `uniform`: every pixel's chroma times k (the line to beat);
- `pale fades`: chroma times min(1, (r / r0) ** 2), r the pixel's Cb/Cr chroma (`utils.natural.pale_factor`): pale
  tints go, clear colours stay; what natural colours ship, with the r0 the weights store;
- `unsure fades, <signal>`: chroma times clip((end - u) / (end - start), 0, 1), u the colour net's uncertainty per
  pixel from its 169-bin distribution (`SIGNALS`, `candidate_signals`), `end` a fixed high quantile of u over the
  set, `start` swept over lower quantiles: full colour where the net is sure, none where it is most unsure;
- `shipped`: natural colours as `Restorer.finish` gives them (the weights' `inference.fade`).

For each setting and image it measures the confidently-wrong share (`utils.natural.confidently_wrong`: CIELAB chroma
C* > 12 where the truth is near-gray, C* < 6, or more than 60 degrees of hue away) and the mean chroma C*; each
family is read at equal mean chroma (`--chroma`, 12 by default) by interpolating its parameter, and compared with
uniform scaling there, per-photo differences with a 95% t interval over photos (crops of one photo are not
independent). `--figure` draws the trade-off (share against mean chroma, one line per family).

    python research/confidence_frontier.py --weights weights --data-dir heldout --json runs/confidence.json \
        --figure weights/confidence_frontier.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

import utils
from utils.inference.color import compose_rgb
from utils.inference.natural import chroma_hue, lab_of, pale_factor, scale_chroma, wrong_of
from utils.inference.pipeline import inpaint, predict_masks
from utils.inference.prefills import prefill

SIGNALS = ("entropy", "hue_entropy", "spread")
START_QUANTILES = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
UNIFORM = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0)
PALE = (0.0, 0.03, 0.06, 0.09, 0.12, 0.16, 0.2, 0.25)


def hue_entropy(p: torch.Tensor, bin_centers: torch.Tensor, sectors: int = 12) -> torch.Tensor:
    """[B,K,h,w] bin probabilities -> [B,h,w]: the distribution summed into `sectors` hue sectors (each bin spread
    over the sectors it covers seen from gray, `utils.hue.bins_to_angles`) and a near-gray class (the neutral bin),
    the entropy of those shares over its maximum (0: one hue, 1: any hue or gray)."""
    from utils.inference.hue import bins_to_angles

    share = bins_to_angles(bin_centers.cpu().numpy().astype(np.float64), sectors)
    m = np.concatenate([share, (share.sum(1) == 0)[:, None]], 1).astype(np.float32)
    q = torch.einsum("bkhw,ks->bshw", p, torch.from_numpy(m))
    return -(q * torch.log(q.clamp_min(1e-12))).sum(1) / float(np.log(sectors + 1))


def candidate_signals(net, logits: torch.Tensor) -> dict[str, np.ndarray]:
    """[B,169,h,w] logits -> {signal: [B,h,w] float32}, higher = more unsure: `entropy` of the 169-bin distribution
    (softmax at temperature 1) over log 169; `hue_entropy` (`hue_entropy` of that distribution); `spread`, the
    standard deviation of the painted (annealed) distribution's chroma, 0-1 Cb/Cr units."""
    p1 = torch.softmax(logits.float(), 1)
    out = {"entropy": -(p1 * torch.log(p1 + 1e-12)).sum(1) / np.log(p1.shape[1]),
           "hue_entropy": hue_entropy(p1, net.bin_centers)}
    pt = torch.softmax(logits.float() / net.temperature, 1)
    bins = net.bin_centers.to(logits.device)
    mean = torch.einsum("bkhw,kc->bchw", pt, bins)
    second = torch.einsum("bkhw,k->bhw", pt, (bins ** 2).sum(1))
    out["spread"] = (second - (mean ** 2).sum(1)).clamp_min(0).sqrt()
    return {k: v.float().cpu().numpy() for k, v in out.items()}


def working_size(arrays, size: int) -> np.ndarray:
    """[B] HxW arrays -> [B,size,size] float32, each area-resized in its own dtype (as the pipeline feeds the colour
    net: uint8 grays, float32 masks)."""
    return np.stack([a if a.shape[0] == size else cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)
                     for a in arrays]).astype(np.float32)


def scaled(rgb: np.ndarray, factor) -> np.ndarray:
    """`utils.natural.scale_chroma`: rgb's chroma times `factor` (a number or a map), its luma exact."""
    return scale_chroma(rgb, factor)


def measure(pred: np.ndarray, truth) -> tuple[float, float]:
    """-> (confidently-wrong share, mean chroma C*) of `pred` against `truth` = (chroma, hue) of the truth."""
    chroma, hue = chroma_hue(lab_of(pred))
    return float(wrong_of(chroma, hue, *truth).mean()), float(chroma.mean())


def at_chroma(values: pd.DataFrame, family: str, target: float) -> tuple[float, np.ndarray] | None:
    """The family's parameter where its mean chroma over images is `target` (linear between the measured
    parameters) and each image's share there; None when the family never reaches `target`."""
    fam = values[values.family == family]
    means = fam.groupby("param")[["chroma", "share"]].mean().sort_index()
    params, chroma = means.index.to_numpy(float), means["chroma"].to_numpy()
    for i in range(len(params) - 1):
        lo, hi = sorted((chroma[i], chroma[i + 1]))
        if lo <= target <= hi and chroma[i] != chroma[i + 1]:
            t = (target - chroma[i]) / (chroma[i + 1] - chroma[i])
            a = fam[fam.param == params[i]].set_index("name")["share"]
            b = fam[fam.param == params[i + 1]].set_index("name")["share"]
            return float(params[i] + t * (params[i + 1] - params[i])), ((1 - t) * a + t * b)
    return None


def paired_interval(diff: pd.Series, photos: dict) -> tuple[float, float]:
    per_photo = diff.groupby(diff.index.map(photos)).mean().to_numpy()
    n = len(per_photo)
    m = float(per_photo.mean())
    half = float(stats.t.ppf(0.975, n - 1) * per_photo.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return m, half


def draw(values: pd.DataFrame, path: Path, target: float, natural: tuple[float, float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=110)
    styles = {"uniform": dict(color="0.35", lw=2.2, ls="--", label="uniform scaling (chroma x k)"),
              "pale fades": dict(color="tab:red", lw=2.2, label="pale fades (what natural colours ship)"),
              "unsure fades, entropy": dict(color="tab:blue", lw=1.1, label="unsure fades: 169-bin entropy"),
              "unsure fades, hue_entropy": dict(color="tab:purple", lw=1.1, label="unsure fades: hue entropy"),
              "unsure fades, spread": dict(color="tab:cyan", lw=1.1, label="unsure fades: chroma spread")}
    for family in values.family.unique():
        if family == "shipped":
            continue
        means = values[values.family == family].groupby("param")[["chroma", "share"]].mean()
        ax.plot(means["chroma"], means["share"], marker=".", **styles.get(family, dict(lw=1.1, label=family)))
    shipped = values[values.family == "shipped"]
    if len(shipped):
        ax.plot(shipped.chroma.mean(), shipped.share.mean(), "o", ms=11, mfc="none", mec="k", mew=2,
                label="natural colours as shipped")
    ax.plot(*natural[::-1], "s", color="k", label="the colour net's own chroma")
    ax.axvline(target, color="0.6", lw=0.8, ls=":")
    ax.axhline(0.18, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("mean CIELAB chroma C* of the output")
    ax.set_ylabel("confidently wrong share of pixels")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left")
    fig.tight_layout()
    with utils.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights", help="weights folder (mask, color, inpaint)")
    ap.add_argument("--data-dir", required=True, help="held-out folder with test_input/, test_gt/ (and manifest.csv)")
    ap.add_argument("--chroma", type=float, default=12.0, help="the mean chroma C* at which the families are compared")
    ap.add_argument("--end-quantile", type=float, default=0.95, help="the unsure fades' `end`: this quantile of the "
                    "signal over the set (where the colour is gone)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test images")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--json", default=None, help="write the summary and the per-image values here")
    ap.add_argument("--figure", default=None, help="draw the trade-off (PNG) here")
    args = ap.parse_args(argv)

    data = Path(args.data_dir)
    try:
        names, photos = utils.heldout_crops(data, ("test_input", "test_gt"), args.limit)
    except utils.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    restorer = utils.Restorer.from_dir(args.weights, device="cpu", colour="natural")
    net = restorer.color_net
    if getattr(net, "head", None) != "classes":
        print(f"error: {args.weights}: the colour net has no class distribution (head {getattr(net, 'head', None)!r})",
              file=sys.stderr)
        return 2

    # pass 1: the networks once per image; natural restorations and the candidate signals kept for pass 2
    cache = {}
    size = restorer.sizes["color"]
    for start in tqdm(range(0, len(names), args.batch_size), desc="networks"):
        chunk = names[start:start + args.batch_size]
        grays = [utils.read_image(data / "test_input" / n, "L", size=utils.IMAGE_SIZE) for n in chunk]
        masks = predict_masks(restorer.mask_net, grays, restorer.sizes["mask"], restorer.refine)
        # as Restorer.restore_batch: the colour net sees the hole pre-filled and no hole marked
        filled = [prefill(gr, mk, restorer.prefill) if mk.any() else gr for gr, mk in zip(grays, masks)]
        g = working_size(filled, size)[:, None] / 255.0
        with torch.inference_mode():      # the chroma utils.pipeline.colorize_chroma computes, and the distribution
            cbcr, logits = net(torch.from_numpy(g), torch.zeros_like(torch.from_numpy(g)), return_logits=True)
        signals = candidate_signals(net, logits)
        colored = [compose_rgb(gr, c) for gr, c in zip(filled, cbcr.permute(0, 2, 3, 1).numpy())]
        restored = inpaint(restorer.inpaint_net, colored, masks, prefill_method=lambda gr, mk: gr)
        for i, n in enumerate(chunk):
            cache[n] = {"restored": restored[i], "mask": masks[i],
                        "signals": {k: v[i].astype(np.float16) for k, v in signals.items()}}
    quant = {k: np.quantile(np.concatenate([c["signals"][k].ravel()[::7] for c in cache.values()]),
                            [*START_QUANTILES, args.end_quantile]) for k in SIGNALS}

    # pass 2: every setting, measured image by image
    rows = []
    for n in tqdm(names, desc="settings"):
        c = cache.pop(n)
        truth = utils.read_image(data / "test_gt" / n, "RGB", size=utils.IMAGE_SIZE)
        truth_polar = chroma_hue(lab_of(truth))
        rgb, mask = c["restored"], c["mask"]
        ringed = restorer.finish(rgb, mask, 0.0)        # the hole's ring colour, no fade (a strength given)

        def add(family, param, out, n=n, truth_polar=truth_polar):
            share, chroma = measure(out, truth_polar)
            rows.append({"family": family, "param": float(param), "name": n, "share": share, "chroma": chroma})

        for k in UNIFORM:
            add("uniform", k, scaled(ringed, k) if k < 1 else ringed)
        for r0 in PALE:
            add("pale fades", r0, scaled(ringed, pale_factor(ringed, r0)) if r0 > 0 else ringed)
        for sig in SIGNALS:
            u, end = c["signals"][sig].astype(np.float32), quant[sig][-1]
            for q, start in zip(START_QUANTILES, quant[sig][:-1]):
                if start < end:
                    add(f"unsure fades, {sig}", q, scaled(ringed, np.clip((end - u) / (end - start), 0.0, 1.0)))
        shipped = restorer.finish(rgb, mask)           # natural colours as shipped
        share, chroma = measure(shipped, truth_polar)
        rows.append({"family": "shipped", "param": 0.0, "name": n, "share": share, "chroma": chroma})
    values = pd.DataFrame(rows)

    natural = values[(values.family == "uniform") & (values.param == 1.0)][["share", "chroma"]].mean()
    base = at_chroma(values, "uniform", args.chroma)
    summary = {"natural": {"share": float(natural.share), "chroma": float(natural.chroma)}}
    shipped = values[values.family == "shipped"]
    summary["shipped"] = {"share": float(shipped.share.mean()), "chroma": float(shipped.chroma.mean()),
                          "fade": restorer.fade.to_dict() if restorer.fade else None}
    print(f"data: {data}   images: {len(names)}   photos: {len(set(photos.values()))}   weights: {args.weights}")
    print(f"the colour net's own chroma: confidently wrong {natural.share:.4f} at mean chroma {natural.chroma:.2f}")
    print(f"natural colours as shipped: {summary['shipped']['share']:.4f} at {summary['shipped']['chroma']:.2f} "
          f"(fade {restorer.fade})")
    print(f"at mean chroma {args.chroma:g}:")
    summary["at_chroma"], summary["chroma"] = {}, args.chroma
    for family in values.family.unique():
        if family == "shipped":
            continue
        hit = at_chroma(values, family, args.chroma)
        if hit is None:
            print(f"  {family:32s} does not reach mean chroma {args.chroma:g}")
            continue
        param, shares = hit
        row = {"param": param, "share": float(shares.mean())}
        if base is not None and family != "uniform":
            row["vs_uniform"], row["vs_uniform_half"] = paired_interval(shares - base[1], photos)
        summary["at_chroma"][family] = row
        vs = (f"   vs uniform {row['vs_uniform']:+.4f} +- {row['vs_uniform_half']:.4f}" if "vs_uniform" in row else "")
        print(f"  {family:32s} share {row['share']:.4f}  (parameter {param:.3f}){vs}")
    summary["quantiles"] = {k: dict(zip([*map(str, START_QUANTILES), f"end {args.end_quantile}"], map(float, v)))
                            for k, v in quant.items()}
    if args.figure:
        draw(values, Path(args.figure), args.chroma, (float(natural.share), float(natural.chroma)),
             f"{len(names)} held-out crops of {len(set(photos.values()))} photos: confidently wrong vs mean chroma")
        print(f"wrote {args.figure}")
    if args.json:
        utils.save_json(args.json, {"data": str(data), "weights": str(args.weights), "images": len(names),
                                    "photos": len(set(photos.values())), "summary": summary,
                                    "per_image": values.round(5).to_dict(orient="list"),
                                    "image_photos": photos})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
