"""Chroma on the exact input luminance: a guided filter (edge-aware smoothing guided by the luminance, used by
`utils.hue.match_hue`'s edge_radius), a hole whose chroma continues its ring (`continue_ring_chroma`, the
pipeline's hole colour), and the hole-vs-ring colour check (`hole_ring_distance`, `utils.plots.plot_hole_colour`).

Every function that returns an image keeps the PIL luma of every pixel exactly (it recomposes with
`utils.color.compose_rgb` on the input's own luma).
"""
from __future__ import annotations

import cv2
import numpy as np

from .color import compose_rgb, pil_luma, rgb_to_cbcr_np


def box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int = 1) -> np.ndarray:
    """He et al.'s guided filter (gray guide, float32 HxW in 0-1; src HxW or HxWxC): smooths src inside
    regions of flat guide and keeps its edges where the guide has edges. `subsample` > 1: the fast guided
    filter (He & Sun 2015), coefficients computed at 1/subsample size and applied at full size."""
    guide = guide.astype(np.float32)
    src = src.astype(np.float32)
    h, w = guide.shape
    g_lo, s_lo, r = guide, src, radius
    if subsample > 1:
        size = (w // subsample, h // subsample)
        g_lo = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
        s_lo = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        r = max(1, radius // subsample)
    g = g_lo[..., None] if s_lo.ndim == 3 else g_lo
    mean_g = box(g_lo, r)
    mean_g = mean_g[..., None] if s_lo.ndim == 3 else mean_g
    mean_s = box(s_lo, r)
    cov = box(g * s_lo, r) - mean_g * mean_s
    var = box(g_lo * g_lo, r) - box(g_lo, r) ** 2
    var = var[..., None] if s_lo.ndim == 3 else var
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    mean_a, mean_b = box(a, r), box(b, r)
    if subsample > 1:
        mean_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
        if src.ndim == 3 and mean_a.ndim == 2:
            mean_a, mean_b = mean_a[..., None], mean_b[..., None]
    full = guide[..., None] if src.ndim == 3 else guide
    return mean_a * full + mean_b


def ring_of(mask: np.ndarray, width: int = 16) -> np.ndarray:
    """The band of `width` pixels around the hole (outside it)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool) & ~mask


def continue_ring_chroma(rgb: np.ndarray, mask: np.ndarray, radius: int = 5, work: int = 128) -> np.ndarray:
    """The hole's chroma replaced by the chroma around it carried inwards (Telea on Cb and Cr at `work` px, as
    chroma is smooth; upsampled); the hole's luma and every pixel outside the hole stay exactly as they were."""
    if not mask.any():
        return rgb
    h, w = mask.shape
    c = rgb_to_cbcr_np(rgb)
    small = (min(w, work), min(h, work))
    c8 = np.clip(cv2.resize(c, small, interpolation=cv2.INTER_AREA) * 255 + 128, 0, 255).astype(np.uint8)
    m8 = (cv2.resize(mask.astype(np.uint8), small, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    m8 = cv2.dilate(m8, np.ones((3, 3), np.uint8))   # no hole colour leaks in through the resize
    filled = np.stack(
        [cv2.inpaint(np.ascontiguousarray(c8[..., i]), m8, radius, cv2.INPAINT_TELEA) for i in range(2)], -1
    )
    filled = cv2.resize((filled.astype(np.float32) - 128) / 255.0, (w, h), interpolation=cv2.INTER_LINEAR)
    c[mask] = filled[mask]
    out = rgb.copy()
    out[mask] = compose_rgb(pil_luma(rgb).astype(np.uint8), c + 0.5)[mask]
    return out


def hole_ring_distance(rgb: np.ndarray, mask: np.ndarray, width: int = 16) -> float:
    """Distance between the mean chroma of the hole and of a ring around it, in 0-255 Cb/Cr units: how much
    the hole's colour stands out from its surroundings (nan when the hole or ring is empty)."""
    hole, ring = hole_ring_chroma(rgb, mask, width)
    return float(np.linalg.norm(hole - ring))


def hole_ring_chroma(rgb: np.ndarray, mask: np.ndarray, width: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(mean Cb/Cr of the hole, mean Cb/Cr of a `width` px ring around it), each (Cb, Cr) in 0-255 units centred
    on gray (0, 0); nan where the hole or ring is empty. What `hole_ring_distance` measures, and the hole-colour
    figure (`utils.plots.plot_hole_colour`) draws."""
    ring = ring_of(mask, width)
    if not mask.any() or not ring.any():
        return np.full(2, np.nan), np.full(2, np.nan)
    c = rgb_to_cbcr_np(rgb) * 255.0
    return c[mask].mean(0), c[ring].mean(0)


__all__ = ["continue_ring_chroma", "guided_filter", "hole_ring_chroma", "hole_ring_distance", "ring_of"]
