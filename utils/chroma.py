"""Chroma post-processing on the exact input luminance: the colour net's bin probabilities, edge-aware smoothing
guided by the luminance, lower saturation where the net is unsure, and a hole whose chroma continues its ring.

Every function that returns an image keeps the PIL luma of every pixel exactly (it recomposes with
`utils.color.compose_rgb` on the input's own luma).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from .configs import known_fields
from .color import CB_FROM_RGB, CR_FROM_RGB, compose_rgb, pil_luma


@dataclass
class ChromaConfig:
    """smooth_radius: guided-filter radius in pixels at 512 (0: off); smooth_eps: its edge threshold (luma 0-1
    variance; smaller keeps finer edges); unsure_desat: saturation is scaled by 1 - unsure_desat * entropy / log(K)
    (K = number of chroma bins; 0: off); hole: 'net' keeps the pipeline's hole colour, 'ring' replaces the hole's
    chroma by the chroma of its surroundings carried inwards (OpenCV Telea on Cb and Cr)."""
    smooth_radius: int = 0
    smooth_eps: float = 1e-3
    unsure_desat: float = 0.0
    hole: str = "net"

    @property
    def is_identity(self) -> bool:
        return self.smooth_radius == 0 and self.unsure_desat == 0 and self.hole == "net"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ChromaConfig":
        cfg = cls(**known_fields(cls, d))
        if cfg.hole not in ("net", "ring"):
            raise ValueError(f"ChromaConfig.hole must be 'net' or 'ring', got {cfg.hole!r}")
        return cfg


def rgb_to_cbcr_np(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 HxWx2 Cb/Cr offsets (0-1 units, 0 = neutral)."""
    x = rgb.astype(np.float32) / 255.0
    return np.stack([x @ np.float32(CB_FROM_RGB), x @ np.float32(CR_FROM_RGB)], -1)


@torch.inference_mode()
def net_chroma_and_bins(net, grays, masks, size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One forward pass of the colour net -> ([B,size,size,2] decoded Cb/Cr in 0-1, [B,K] probability mass per
    chroma bin summed over pixels and normalised, [B,size,size] per-pixel entropy in nats).
    Needs a ColorizationNet with head='classes'."""
    if getattr(net, "head", None) != "classes":
        raise ValueError("bin probabilities need a ColorizationNet with head='classes'")
    rs = lambda a: a if a.shape[0] == size else cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)  # noqa: E731
    g = np.stack([rs(x) for x in grays]).astype(np.float32)[:, None] / 255.0
    m = np.stack([rs(x.astype(np.float32)) for x in masks])[:, None]
    if not isinstance(net, torch.nn.Module):     # onnxruntime (utils.onnx_backend): the graph computes all three
        return net.run_all(g, m)
    dev = next(net.parameters()).device
    cbcr, logits = net(torch.from_numpy(g).to(dev), torch.from_numpy(m).to(dev), return_logits=True)
    p = torch.softmax(logits.float(), 1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1)
    mass = p.sum((2, 3))
    return (cbcr.float().permute(0, 2, 3, 1).cpu().numpy(), (mass / mass.sum(1, keepdim=True)).cpu().numpy(),
            entropy.cpu().numpy())


def net_bin_probabilities(net, grays, masks, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """-> ([B,K] bin mass, [B,size,size] entropy) of `net_chroma_and_bins`."""
    return net_chroma_and_bins(net, grays, masks, size)[1:]


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


def smooth_chroma(rgb: np.ndarray, radius: int, eps: float, subsample: int = 4) -> np.ndarray:
    """Edge-aware smoothing of the chroma of uint8 RGB, guided by its own luma; luma kept exactly."""
    y = pil_luma(rgb).astype(np.uint8)
    c = guided_filter(y.astype(np.float32) / 255.0, rgb_to_cbcr_np(rgb), radius, eps, subsample)
    return compose_rgb(y, c + 0.5)


def desaturate_unsure(rgb: np.ndarray, entropy: np.ndarray, strength: float, n_bins: int) -> np.ndarray:
    """Scale each pixel's chroma by 1 - strength * entropy / log(n_bins) (entropy at any size: resized)."""
    if strength == 0:
        return rgb
    h, w = rgb.shape[:2]
    e = cv2.resize(entropy.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    scale = np.clip(1.0 - strength * e / np.log(n_bins), 0.0, 1.0)[..., None]
    y = pil_luma(rgb).astype(np.uint8)
    return compose_rgb(y, rgb_to_cbcr_np(rgb) * scale + 0.5)


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
    filled = np.stack([cv2.inpaint(np.ascontiguousarray(c8[..., i]), m8, radius, cv2.INPAINT_TELEA) for i in range(2)], -1)
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


def apply_chroma(rgb: np.ndarray, mask: np.ndarray, config: ChromaConfig, entropy: np.ndarray | None = None,
                 n_bins: int = 169) -> np.ndarray:
    """The post-processing of `config` without a hue remap, in the pipeline's order (`Restorer.finish`):
    edge-aware smoothing, unsure pixels paler, hole chroma from the ring. Luma kept exactly."""
    out = rgb
    if config.smooth_radius:
        out = smooth_chroma(out, config.smooth_radius, config.smooth_eps)
    if config.unsure_desat and entropy is not None:
        out = desaturate_unsure(out, entropy, config.unsure_desat, n_bins)
    if config.hole == "ring":
        out = continue_ring_chroma(out, mask)
    return out
