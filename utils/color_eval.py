"""The colour benchmark: every colour change read between its floor and its ceiling, on photos with truth.

Rows (each with the score and its three terms, and the hole-colour figure):
  gray copy                      the damaged input copied to RGB (no colour at all);
  blind guess                    the pipeline's raw output with its hue remapped to the training photos' mean
                                 histogram (the prior in color.json; the same for every photo);
  colour stage alone             the colour net on the TRUE luminance (no hole), nothing else;
  pipeline                       the whole pipeline as configured (what restore.py writes);
  oracle                         the raw output remapped to each photo's TRUE chroma-angle histogram: the
                                 ceiling of any per-photo hue prediction realised through the remap.
Hole colour: distance between the mean chroma of the hole and of a 16 px ring around it (0-255 Cb/Cr units),
for each row and for the truth; a hole with a colour of its own stands out far more than the truth's does.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .baselines import gray_copy
from .chroma import ChromaConfig, hole_ring_distance
from .hue import HueConfig, angle_histogram, match_hue
from .images import gray_of
from .metric import score_arrays, summarize
from .pipeline import colorize


def _batches(n: int, size: int):
    for s in range(0, n, size):
        yield range(s, min(s + size, n))


def raw_restorer(restorer):
    """A copy of `restorer` with every colour post-process off (hue remap, head, chroma)."""
    import copy

    raw = copy.copy(restorer)
    raw.hue, raw.hue_head, raw.chroma = HueConfig(), None, ChromaConfig()
    return raw


def colour_benchmark(restorer, grays, gts, masks, names=None, batch_size: int = 8, progress: bool = True):
    """-> (table: one row per method with score, ssim, masked_ssim, hue, hole_ring; dict of predictions;
    the pipeline's predicted masks)."""
    if restorer.hue.prior is None:
        raise ValueError("the colour benchmark needs the hue prior (the colour checkpoint's inference.hue.prior)")
    raw = raw_restorer(restorer)
    preds = {k: [] for k in ("gray copy", "blind guess (prior remap)", "colour stage alone (true luminance)",
                             "pipeline", "oracle (true hue histogram)")}
    blind = HueConfig(1.0, 0.0, True, list(restorer.hue.prior))
    pred_masks = []
    for idx in tqdm(list(_batches(len(grays), batch_size)), desc="colour benchmark", disable=not progress):
        g = [grays[i] for i in idx]
        base_r = raw.restore_batch(g)            # the whole pipeline, its own masks, no colour post-process
        base = [r.restored for r in base_r]
        pred_masks += [r.mask for r in base_r]
        piped = [r.restored for r in restorer.restore_batch(g, [r.mask for r in base_r])]
        true_y = [gray_of(gts[i]) for i in idx]
        alone = colorize(restorer.color_net, true_y, [np.zeros_like(masks[i]) for i in idx],
                         restorer.sizes["color"], restorer.amp, restorer.chroma_gain)
        for j, i in enumerate(idx):
            preds["gray copy"].append(gray_copy(grays[i]))
            preds["blind guess (prior remap)"].append(match_hue(base[j], blind, base_r[j].mask))
            preds["colour stage alone (true luminance)"].append(alone[j])
            preds["pipeline"].append(piped[j])
            oracle = replace(blind, keep_hole=False, prior=angle_histogram(gts[i]).tolist())
            preds["oracle (true hue histogram)"].append(match_hue(base[j], oracle, base_r[j].mask))
    rows = []
    for name, p in preds.items():
        s = summarize(score_arrays(gts, p, masks, names))
        rows.append({"method": name, **s, "hole_ring": float(np.nanmean([hole_ring_distance(x, m) for x, m in zip(p, masks)]))})
    rows.append({"method": "truth", "hole_ring": float(np.nanmean([hole_ring_distance(g, m) for g, m in zip(gts, masks)]))})
    return pd.DataFrame(rows).set_index("method"), preds, pred_masks
