"""The colour net's confidence, how natural colours use it, and how confident colour blotches are measured.

The colour net (head 'classes') predicts a distribution over 169 Cb/Cr bins per pixel and paints its annealed mean.
Where the distribution is spread out (several hues about as likely), that mean is a guess; painted at full chroma,
a guess is a confident blotch of a wrong colour (teal on a gray saucer, a yellow-green face).

- `hue_entropy(logits, bin_centers)`: how unsure the net is of a pixel's hue: its distribution summed into 12 hue
  sectors of 30 degrees and a near-gray class, the entropy of those 13 shares over log 13 (0: one hue, 1: any hue).
- `fade_unsure(rgb, unsure, start, end)`: natural colours keep the chroma where the uncertainty is at most `start`,
  and fade it linearly to gray where it reaches `end` (the pipeline's natural colours, `Restorer.finish`; the
  weights store start and end, `inference.unsure` in color.json, chosen on validation-only photos).
- `confidently_wrong(pred, truth)`: the measure: the share of pixels that are clearly coloured (CIELAB chroma
  C* > 12) where the truth is near-gray (C* < 6) or of a hue more than 60 degrees away, with the prediction's mean
  chroma (research/confidence_frontier.py, the model card's trade-off figure).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from .color import compose_rgb, pil_luma, rgb_to_cbcr_np

COLOURFUL = 12.0        # C* above which a pixel is clearly coloured
NEAR_GRAY = 6.0         # C* below which a truth pixel is near-gray
MAX_HUE_DEG = 60.0      # a hue further than this from the truth's is another colour


SIGNALS = ("hue_entropy",)
HUE_SECTORS = 12


@dataclass(frozen=True)
class UnsureConfig:
    """How natural colours fade where the colour net is unsure: `signal` (one of SIGNALS), full chroma up to
    `start`, none from `end` (0 <= start < end <= 1), linear between."""
    start: float
    end: float
    signal: str = "hue_entropy"

    def __post_init__(self):
        if self.signal not in SIGNALS:
            raise ValueError(f"UnsureConfig.signal must be one of {SIGNALS}, got {self.signal!r}")
        if not 0.0 <= self.start < self.end <= 1.0:
            raise ValueError(f"UnsureConfig: need 0 <= start < end <= 1, got start {self.start}, end {self.end}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "UnsureConfig | None":
        return None if not d else cls(**d)


def sector_matrix(bin_centers) -> np.ndarray:
    """[K, 13] float32: each chroma bin's share of the 12 hue sectors (`utils.hue.bins_to_angles`, a bin spread over
    the sectors it covers seen from gray) and of the near-gray class (column 12: the neutral bin)."""
    from .hue import bins_to_angles

    bc = np.asarray(bin_centers.detach().cpu() if torch.is_tensor(bin_centers) else bin_centers, np.float64)
    sectors = bins_to_angles(bc, HUE_SECTORS)
    gray = (sectors.sum(1) == 0).astype(np.float64)
    return np.concatenate([sectors, gray[:, None]], 1).astype(np.float32)


def hue_entropy(logits: torch.Tensor, bin_centers) -> torch.Tensor:
    """[B,K,H,W] logits of a classes-head colour net -> [B,H,W] its hue uncertainty in 0-1: the distribution
    (softmax at temperature 1) summed into HUE_SECTORS hue sectors and a near-gray class, the entropy of those
    shares over its maximum. 0: the net puts all its mass on one hue; 1: every hue (and gray) as likely."""
    p = torch.softmax(logits.float(), 1)
    m = torch.from_numpy(sector_matrix(bin_centers)).to(p.device)
    q = torch.einsum("bkhw,ks->bshw", p, m)
    return -(q * torch.log(q.clamp_min(1e-12))).sum(1) / float(np.log(HUE_SECTORS + 1))


def scale_chroma(rgb: np.ndarray, factor) -> np.ndarray:
    """uint8 HxWx3 RGB with each pixel's chroma (Cb/Cr) times `factor` (a number, or a map of any size, resized
    bilinearly); the PIL luma of every pixel kept exactly."""
    h, w = rgb.shape[:2]
    f = np.asarray(factor, np.float32)
    if f.ndim == 2 and f.shape != (h, w):
        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
    c = rgb_to_cbcr_np(rgb) * (f[..., None] if f.ndim == 2 else f)
    return compose_rgb(pil_luma(rgb).astype(np.uint8), c + 0.5)


def fade_factor(unsure: np.ndarray, config: UnsureConfig) -> np.ndarray:
    """The chroma factor of each pixel: 1 where `unsure` <= start, 0 where >= end, linear between."""
    return np.clip((config.end - np.asarray(unsure, np.float32)) / (config.end - config.start), 0.0, 1.0)


def fade_unsure(rgb: np.ndarray, unsure: np.ndarray, config: UnsureConfig) -> np.ndarray:
    """Natural colours without confident blotches: rgb's chroma faded where the colour net is unsure (`unsure`:
    its uncertainty map, any size, e.g. the net's working size; `fade_factor`); luma exact."""
    return scale_chroma(rgb, fade_factor(unsure, config))


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 sRGB -> float32 CIELAB (D65; OpenCV's float conversion, within 0.3 of scikit-image's rgb2lab and
    8x faster)."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def chroma_hue(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB -> (chroma C*, hue angle in radians) per pixel."""
    return np.hypot(lab[..., 1], lab[..., 2]), np.arctan2(lab[..., 2], lab[..., 1])


def wrong_pixels(pred_lab: np.ndarray, truth_lab: np.ndarray, colourful: float = COLOURFUL,
                 near_gray: float = NEAR_GRAY, max_hue_deg: float = MAX_HUE_DEG) -> np.ndarray:
    """Bool HxW: the prediction is clearly coloured (C* > colourful) where the truth is near-gray (C* < near_gray)
    or its hue is more than max_hue_deg from the truth's."""
    return wrong_of(*chroma_hue(pred_lab), *chroma_hue(truth_lab), colourful, near_gray, max_hue_deg)


def wrong_of(pred_chroma, pred_hue, truth_chroma, truth_hue, colourful: float = COLOURFUL,
             near_gray: float = NEAR_GRAY, max_hue_deg: float = MAX_HUE_DEG) -> np.ndarray:
    """`wrong_pixels` from the prediction's and the truth's chroma and hue (`chroma_hue`; the truth's computed once
    for many predictions)."""
    off = np.abs(np.remainder(pred_hue - truth_hue + np.pi, 2 * np.pi) - np.pi) > np.deg2rad(max_hue_deg)
    return (pred_chroma > colourful) & ((truth_chroma < near_gray) | off)


def confidently_wrong(pred: np.ndarray, truth: np.ndarray, **limits) -> dict:
    """One image (uint8 HxWx3 RGB each, same shape) -> {"share": the share of its pixels that are confidently wrong
    (`wrong_pixels`), "chroma": the prediction's mean C*, "truth_chroma": the truth's mean C*}."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    for name, a in (("prediction", pred), ("truth", truth)):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"confidently_wrong: the {name} must be uint8 HxWx3 RGB, got {a.dtype} {a.shape}")
    if pred.shape != truth.shape:
        raise ValueError(f"confidently_wrong: the prediction is {pred.shape}, the truth {truth.shape}")
    p, t = lab_of(pred), lab_of(truth)
    return {"share": float(wrong_pixels(p, t, **limits).mean()), "chroma": float(chroma_hue(p)[0].mean()),
            "truth_chroma": float(chroma_hue(t)[0].mean())}
