"""Refine the network's hole mask with what we know of the damage: one region of one exact gray value.

1. threshold the network's probability (recall first: a low threshold; a quarter of it if nothing passes);
2. find the *flat* regions of the input: 4-connected components of pixels equal to all their 8 neighbours
   (exact flatness is rare in photos, except where they clip at 0 or 255);
3. the hole has one value: the value whose flat regions the network's mask covers most is chosen (values other
   than 0 and 255 first, when they hold at least `unclipped_share` of that cover: fills are uniform over
   0-255, while natural flat areas are nearly always clipped);
4. for an unclipped value, every flat region of it that the network's mask touches is taken whole (so a
   partly detected hole is completed), then pixels of the same value 8-connected to it within `edge_margin` px of it or
   of the network's low-threshold mask are added (the hole's border and thin star spikes, which are not flat);
5. for a clipped value (0 or 255) the hole may merge with natural sky or shadow: a flat region mostly covered
   by the network's mask is taken whole, one only touched by it contributes the part within `grow_margin` px
   of the network's mask, and only a 2 px ring of same-valued border pixels is added;
6. if the network sees nothing at all, the largest flat region is taken when it is big enough, preferring
   values other than 0 and 255 (a missed hole costs the most);
7. a photo with no damage gets no hole: a hole in which the network is confident (probability >= 0.5) over fewer
   than `min_confident_area` px, or less than `min_hole_value_share` of whose pixels hold its most common value
   (damage is one gray value; the network's own mask on texture is not), or (when set) over which the network's mean
   probability is under `min_hole_prob`, is dropped: an empty mask. The confident area, not the mean, keeps a hole
   that the network found only in part and step 4 completed. The fallback of step 6, which the network does not see,
   is dropped unless `min_confident_area` is 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..core.configs import known_fields


@dataclass
class RefineConfig:
    threshold: float = 0.35  # probability threshold (below 0.5: bias toward recall)
    take_share: float = 0.5  # a flat region this much covered by the network's mask is taken whole
    grow_margin: int = 12  # px a partly covered flat region may extend beyond the network's mask
    edge_margin: int = 12  # px the same-value border/thin parts (star spikes) may extend (unclipped values)
    min_area: int = 20  # flat regions smaller than this are ignored
    min_overlap: int = 4  # a flat region must share this many px with the network's mask
    tail_margin: int = 96  # px thin tails are followed across 1-px gaps (unclipped values; 0: off)
    unclipped_share: float = 0.1  # prefer a fill value other than 0/255 holding this share of the best cover
    fallback_min_area: int = 1000  # network-free fallback: the largest flat region, if at least this big
    dilate: int = 0  # final dilation in px (recall insurance; costs precision)
    # the minimum-hole rule (0 turns each off), chosen on validation crops (research/stroke_benchmark.py --sweep)
    min_confident_area: int = 200  # a hole with fewer px of network probability >= 0.5 (at the input's size) is dropped
    min_hole_value_share: float = 0.5   # a hole with less than this share of its pixels at one value is dropped
    min_hole_prob: float = 0.0     # a hole over which the network's mean probability is under this is dropped

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RefineConfig:
        """From a checkpoint's JSON; a key that is not a field is named in a warning and ignored."""
        return cls(**known_fields(cls, d))


_K3 = np.ones((3, 3), np.uint8)


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def flat_regions(gray: np.ndarray):
    """(n, labels, areas, values) of the 4-connected components of exactly flat pixels (label 0: not flat)."""
    flat = (cv2.dilate(gray, _K3) == cv2.erode(gray, _K3)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    values = np.zeros(n, np.int32)
    values[labels.ravel()] = gray.ravel()
    return n, labels, stats[:, cv2.CC_STAT_AREA], values


def _fallback(labels, areas, values, cfg: RefineConfig) -> np.ndarray:
    """The largest flat region big enough to be a hole, unclipped values first."""
    candidates = np.arange(1, len(areas))
    candidates = candidates[areas[candidates] >= cfg.fallback_min_area]
    if candidates.size == 0:
        return np.zeros(labels.shape, bool)
    unclipped = candidates[(values[candidates] != 0) & (values[candidates] != 255)]
    pool = unclipped if unclipped.size else candidates
    return labels == pool[np.argmax(areas[pool])]


def _same_value_edges(gray, region, value: int, margin: int, near=None, bridge: bool = False) -> np.ndarray:
    """Pixels of `value` 8-connected to the region (across 1-px gaps with `bridge`: thin polygon tails
    rasterize as dashed lines), within `margin` px of it (or of `near`)."""
    eq = (gray == value).astype(np.uint8)
    _, lab = cv2.connectedComponents(cv2.dilate(eq, _K3) if bridge else eq, connectivity=8)
    lab = lab * eq
    touching = np.zeros(lab.max() + 1, bool)
    touching[lab[region & (eq > 0)]] = True
    touching[0] = False
    base = region if near is None else (region | near)
    dist = cv2.distanceTransform((~base).astype(np.uint8), cv2.DIST_L2, 3)
    return touching[lab] & (dist <= margin)


def hole_evidence(gray: np.ndarray, prob: np.ndarray, hole: np.ndarray) -> dict:
    """What the minimum-hole rule reads of a (non-empty) hole: its area in px, its confident area (px where the
    network's probability is >= 0.5), the network's mean probability over it and the share of its pixels at its most
    common gray value."""
    values, p = gray[hole], prob[hole]
    return {"area": int(values.size), "confident_area": int((p >= 0.5).sum()), "mean_prob": float(p.mean()),
            "value_share": float(np.bincount(values, minlength=256).max() / max(values.size, 1))}


def is_damage(gray: np.ndarray, prob: np.ndarray, hole: np.ndarray, cfg: RefineConfig) -> bool:
    """Whether a non-empty hole passes the minimum-hole rule (`min_confident_area`, `min_hole_value_share`,
    `min_hole_prob` of RefineConfig)."""
    e = hole_evidence(gray, prob, hole)
    return (e["confident_area"] >= cfg.min_confident_area and e["value_share"] >= cfg.min_hole_value_share
            and e["mean_prob"] >= cfg.min_hole_prob)


def refine_mask(gray: np.ndarray, prob: np.ndarray, cfg: RefineConfig | None = None) -> np.ndarray:
    """gray: uint8 HxW damaged input; prob: float HxW hole probability at the same size -> bool mask."""
    cfg = cfg or RefineConfig()
    net = prob > cfg.threshold
    if not net.any():
        net = prob > cfg.threshold / 4
    n, labels, areas, values = flat_regions(gray)
    value = None
    if not net.any():
        out = _fallback(labels, areas, values, cfg)
        if out.any():
            value = int(gray[out][0])
    else:
        overlap = np.bincount(labels[net], minlength=n)
        overlap[0] = 0
        big = areas >= cfg.min_area
        by_value = np.bincount(values, weights=overlap * big, minlength=256)
        value = int(by_value.argmax())
        inner = int(by_value[1:255].argmax()) + 1
        if value in (0, 255) and by_value[inner] >= cfg.unclipped_share * by_value[value]:
            value = inner
        touched = big & (values == value) & (overlap >= cfg.min_overlap)
        touched[0] = False
        clipped = value in (0, 255)
        whole = touched & (overlap >= cfg.take_share * areas) if clipped else touched
        out = whole[labels]
        part = touched & ~whole
        if part.any():
            out |= part[labels] & (cv2.dilate(net.astype(np.uint8), _disk(cfg.grow_margin)) > 0)
        if not out.any():  # nothing flat under the network's mask: trust the network
            out, value = net, None
    if value is not None and out.any():
        if value in (0, 255):
            out = out | _same_value_edges(gray, out, value, 2)
        else:
            out = out | _same_value_edges(gray, out, value, cfg.edge_margin, prob > cfg.threshold / 4)
            if cfg.tail_margin > 0:
                out = out | _same_value_edges(gray, out, value, cfg.tail_margin, bridge=True)
    if out.any() and not is_damage(gray, prob, out, cfg):
        return np.zeros(out.shape, bool)          # too small, too unsure or not one value: no hole
    if cfg.dilate > 0:
        out = cv2.dilate(out.astype(np.uint8), _disk(cfg.dilate)) > 0
    return out


def mask_stats(pred: np.ndarray, true: np.ndarray) -> dict:
    """IoU, precision and recall of a predicted bool mask (empty/empty counts as perfect)."""
    tp = float((pred & true).sum())
    fp = float((pred & ~true).sum())
    fn = float((~pred & true).sum())
    return {
        "iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
    }


__all__ = ["RefineConfig", "mask_stats", "refine_mask"]
