"""Refine the network's hole mask with what we know of the damage: one region of one exact gray value.

1. threshold the network's probability (recall first: a low threshold);
2. find the dominant exact gray value under it; if no value dominates, keep the network's mask;
3. keep the pixels of exactly that value that are connected to the network's mask and lie within
   `grow_margin` px of it. The margin stops growth into natural flat areas of the same value
   (saturated sky at 255, shadows at 0), where the network's mask is kept instead.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass
class RefineConfig:
    threshold: float = 0.35       # probability threshold (below 0.5: bias toward recall)
    min_share: float = 0.5        # the dominant value must cover this share of the network's mask
    grow_margin: int = 12         # px the exact-value region may extend beyond the network's mask
    dilate: int = 0               # final dilation in px (recall insurance; costs precision)
    min_overlap: int = 4          # an exact-value component must share this many px with the network's mask

    def to_dict(self):
        return asdict(self)


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def refine_mask(gray: np.ndarray, prob: np.ndarray, cfg: RefineConfig | None = None) -> np.ndarray:
    """gray: uint8 HxW damaged input; prob: float HxW hole probability at the same size -> bool mask."""
    cfg = cfg or RefineConfig()
    net = prob > cfg.threshold
    if not net.any():
        net = prob > cfg.threshold / 4          # a faint detection beats none: a missed hole costs most
    if not net.any():
        return net
    values = gray[net]
    counts = np.bincount(values, minlength=256)
    v = int(counts.argmax())
    if counts[v] < cfg.min_share * values.size:
        out = net
    else:
        allowed = cv2.dilate(net.astype(np.uint8), _disk(cfg.grow_margin)) > 0
        cand = ((gray == v) & allowed).astype(np.uint8)
        n, labels = cv2.connectedComponents(cand, connectivity=8)
        hits = np.bincount(labels[net & (cand > 0)], minlength=n)
        keep = hits >= cfg.min_overlap
        keep[0] = False
        out = keep[labels]
        if not out.any():
            out = net
    if cfg.dilate > 0:
        out = cv2.dilate(out.astype(np.uint8), _disk(cfg.dilate)) > 0
    return out


def mask_stats(pred: np.ndarray, true: np.ndarray) -> dict:
    """IoU, precision and recall of a predicted bool mask (empty/empty counts as perfect)."""
    tp = float((pred & true).sum())
    fp = float((pred & ~true).sum())
    fn = float((~pred & true).sum())
    return {"iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0}
