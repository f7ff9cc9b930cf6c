"""Natural colours without confident blotches: the fade of pale colour, and how clearly wrong colour is measured.

The colour net paints many scenes with a thin tint (a sepia or beige cast, a faint blue) over what is gray in the
photo: walls, stone, water, overcast sky. Measured on held-out photos, most of its clearly wrong colour is of that
kind (CIELAB chroma above 12 where the truth is near-gray), and the weakly coloured pixels are wrong more often than
the strongly coloured ones. Natural colours therefore fade each pixel's chroma by how pale it is:
chroma times min(1, (r / pale_chroma) ** 2), r its Cb/Cr chroma (`fade_pale`): a tint goes to gray, a clear colour
stays. At equal mean chroma it leaves fewer confidently wrong pixels than scaling every pixel's chroma alike, and as
few as fading by the colour net's own uncertainty (the entropy or spread of its 169-bin distribution), which needs
more (research/confidence_frontier.py, the model card's "Natural colours").

- `fade_pale(rgb, config)`, `FadeConfig`: the fade; the weights store `pale_chroma` (`inference.fade` in
  color.json, chosen on validation-only photos), `Restorer.finish` applies it to natural colours.
- `scale_chroma(rgb, factor)`: chroma times a number or a map, luma exact.
- `confidently_wrong(pred, truth)`: the measure: the share of pixels that are clearly coloured (C* > 12) where the
  truth is near-gray (C* < 6) or of a hue more than 60 degrees away, with the prediction's mean chroma.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .color import compose_rgb, pil_luma, rgb_to_cbcr_np

__all__ = [
    "FadeConfig",
    "scale_chroma",
    "pale_factor",
    "fade_pale",
    "lab_of",
    "chroma_hue",
    "wrong_pixels",
    "wrong_of",
    "confidently_wrong",
]

COLOURFUL = 12.0        # C* above which a pixel is clearly coloured
NEAR_GRAY = 6.0         # C* below which a truth pixel is near-gray
MAX_HUE_DEG = 60.0      # a hue further than this from the truth's is another colour


@dataclass(frozen=True)
class FadeConfig:
    """Natural colours' fade: a pixel of Cb/Cr chroma r (0-1 units) keeps min(1, (r / pale_chroma) ** 2) of it."""
    pale_chroma: float

    def __post_init__(self):
        if not 0.0 < float(self.pale_chroma) <= 0.5:
            raise ValueError(f"FadeConfig.pale_chroma must be in (0, 0.5] (Cb/Cr chroma, 0-1 units), got "
                             f"{self.pale_chroma!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> FadeConfig | None:
        return None if not d else cls(**d)


def scale_chroma(rgb: np.ndarray, factor) -> np.ndarray:
    """uint8 HxWx3 RGB with each pixel's chroma (Cb/Cr) times `factor` (a number, or a map of any size, resized
    bilinearly); the PIL luma of every pixel kept exactly."""
    h, w = rgb.shape[:2]
    f = np.asarray(factor, np.float32)
    if f.ndim == 2 and f.shape != (h, w):
        f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
    c = rgb_to_cbcr_np(rgb) * (f[..., None] if f.ndim == 2 else f)
    return compose_rgb(pil_luma(rgb).astype(np.uint8), c + 0.5)


def pale_factor(rgb: np.ndarray, pale_chroma: float) -> np.ndarray:
    """Each pixel's chroma factor in natural colours: min(1, (r / pale_chroma) ** 2), r its Cb/Cr chroma."""
    r = np.hypot(*np.moveaxis(rgb_to_cbcr_np(rgb), -1, 0))
    return np.minimum(1.0, (r / pale_chroma) ** 2)


def fade_pale(rgb: np.ndarray, config: FadeConfig) -> np.ndarray:
    """Natural colours without confident blotches: pale tints faded to gray, clear colours kept (`pale_factor`);
    luma exact."""
    return scale_chroma(rgb, pale_factor(rgb, config.pale_chroma))


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
