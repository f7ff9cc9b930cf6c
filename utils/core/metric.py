"""The competition score, exactly as DACON 236420 computes it.

score = 0.2 * SSIM(full RGB) + 0.4 * masked SSIM + 0.4 * hue-histogram correlation

Degenerate cases (documented decisions, never a silent NaN):
- constant prediction (data_range 0): skimage would divide by zero; we use data_range = 1,
  the smallest non-zero range of uint8 data, so a flat prediction scores near 0 structure.
- hole of fewer than 7 pixels (the 1-D SSIM window is 7): the masked term falls back to the
  full-image SSIM, and `masked_fallback` is True in the result.
- a hue correlation that OpenCV cannot define (a flat histogram): 0.0.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity

WEIGHTS = {"ssim": 0.2, "masked_ssim": 0.4, "hue": 0.4}
MIN_HOLE_PIXELS = 7


def _data_range(pred: np.ndarray) -> float:
    rng = float(pred.max()) - float(pred.min())
    return rng if rng > 0 else 1.0


def ssim_term(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(structural_similarity(gt, pred, channel_axis=-1, data_range=_data_range(pred)))


def masked_ssim_term(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> tuple[float, bool]:
    """1-D SSIM over the hole pixels in raster order; data_range from the whole prediction."""
    sel = mask > 0
    if int(sel.sum()) < MIN_HOLE_PIXELS:
        return ssim_term(gt, pred), True
    return float(structural_similarity(gt[sel], pred[sel], channel_axis=-1, data_range=_data_range(pred))), False


def hue_term(gt: np.ndarray, pred: np.ndarray) -> float:
    hists = []
    for img in (gt, pred):
        hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0], None, [180], [0, 180])
        hists.append(cv2.normalize(h, h).flatten())
    value = float(cv2.compareHist(hists[0], hists[1], cv2.HISTCMP_CORREL))
    return value if np.isfinite(value) else 0.0


def _check(gt, pred, mask):
    for name, a in (("gt", gt), ("pred", pred)):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"{name}: expected uint8 HxWx3 RGB, got {a.dtype} {a.shape}")
    if gt.shape != pred.shape or mask.shape != gt.shape[:2]:
        raise ValueError(f"shapes differ: gt {gt.shape}, pred {pred.shape}, mask {mask.shape}")


def score_image(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict:
    """The competition score of one image with its three terms."""
    _check(gt, pred, mask)
    ssim = ssim_term(gt, pred)
    masked, fallback = masked_ssim_term(gt, pred, mask)
    hue = hue_term(gt, pred)
    score = WEIGHTS["ssim"] * ssim + WEIGHTS["masked_ssim"] * masked + WEIGHTS["hue"] * hue
    return {"score": score, "ssim": ssim, "masked_ssim": masked, "hue": hue, "masked_fallback": fallback}


def score_arrays(gts, preds, masks, names=None) -> pd.DataFrame:
    """Per-image scores as a table (one row per image); `.mean()` gives the competition score."""
    rows = []
    for i, (g, p, m) in enumerate(zip(gts, preds, masks)):
        row = score_image(g, p, m)
        row["name"] = names[i] if names is not None else str(i)
        rows.append(row)
    return pd.DataFrame(rows).set_index("name")


def score_folder(pred_dir, gt_dir, mask_dir) -> pd.DataFrame:
    """Score every PNG of `gt_dir` against the same name in `pred_dir`, with masks from `mask_dir`
    (0/255 PNGs). A missing or malformed prediction is an error naming the file."""
    from .images import read_image

    gt_dir, pred_dir, mask_dir = Path(gt_dir), Path(pred_dir), Path(mask_dir)
    names = sorted(p.name for p in gt_dir.glob("*.png"))
    if not names:
        raise FileNotFoundError(f"{gt_dir}: no PNG ground truth found")
    rows = []
    for name in names:
        gt = read_image(gt_dir / name, "RGB")
        pred = read_image(pred_dir / name, "RGB", size=gt.shape[0])
        mask = read_image(mask_dir / name, "L") > 0
        row = score_image(gt, pred, mask)
        row["name"] = name
        rows.append(row)
    return pd.DataFrame(rows).set_index("name")


def summarize(table: pd.DataFrame) -> dict:
    """Mean score and terms of a per-image table."""
    return {k: float(table[k].mean()) for k in ("score", "ssim", "masked_ssim", "hue")}


__all__ = ["score_arrays", "score_folder", "score_image", "summarize"]
