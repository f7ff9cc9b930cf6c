"""Hue-histogram matching, a post-process for the score's hue term.

The hue term correlates the 180-bin hue histograms of the whole prediction and the whole ground truth,
wherever each pixel's hue is. A colorizer that is unsure commits to a few narrow hue peaks, and a peak in the
wrong place correlates negatively. Spreading the prediction's hue distribution towards what photos of the
training set look like on average (the *hue prior*) raises the expected correlation while keeping each
pixel's luminance exactly and the hue order of the image (the remap is monotone around the colour circle,
so regions of one colour stay one colour).

Hue here is the angle of the (Cb, Cr) chroma vector; OpenCV's HSV hue is a monotone function of it, so
matching histograms of the angle matches the metric's histograms too. Pixels with almost no chroma keep
their chroma (their hue is noise). Saturation (the chroma length) is never changed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from tqdm.auto import tqdm

from .configs import known_fields
from .color import CB_FROM_RGB, CR_FROM_RGB, compose_rgb, pil_luma

BINS = 360
MIN_CHROMA = 1.5 / 255


@dataclass
class HueConfig:
    """strength: weight of the prior in the target histogram (0: the image's own histogram);
    smooth: Gaussian sigma, in bins of 1 degree, applied to the target (spreads narrow peaks);
    keep_hole: leave the hole's pixels as they are (they still count in the metric's histogram);
    prior: the mean hue-angle histogram of the training photos (BINS values summing to 1);
    hsv_pass: after all chroma post-processing, realise the target once more in the metric's own OpenCV HSV hue
    bins (`match_hsv_hue`), moving only pixels with chroma above hsv_pass (0-255 Cb/Cr units; 0: off). The
    pale pixels' uint8 hues are quantised and the post-processing after the first remap moves them, so the
    first remap alone leaves the metric's histogram far from the target."""
    strength: float = 0.0
    smooth: float = 0.0
    keep_hole: bool = True
    prior: list | None = field(default=None, repr=False)
    hsv_pass: float = 0.0

    @property
    def is_identity(self) -> bool:
        return (self.strength == 0 or self.prior is None) and self.smooth == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "HueConfig":
        return cls(**known_fields(cls, d))


def chroma_polar(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 HxWx3 RGB -> (chroma angle in radians, chroma length in 0-1 units) per pixel."""
    r, g, b = (rgb[..., i].astype(np.float32) / 255.0 for i in range(3))
    cb = CB_FROM_RGB[0] * r + CB_FROM_RGB[1] * g + CB_FROM_RGB[2] * b
    cr = CR_FROM_RGB[0] * r + CR_FROM_RGB[1] * g + CR_FROM_RGB[2] * b
    return np.arctan2(cr, cb), np.hypot(cb, cr)


def angle_histogram(rgb: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Normalised histogram of chroma angles of the pixels with visible chroma."""
    theta, radius = chroma_polar(rgb)
    h, _ = np.histogram(theta[radius > MIN_CHROMA], bins, (-np.pi, np.pi))
    return h / max(h.sum(), 1)


HUE_PRIOR_MAX_PHOTOS = 1000     # a mean histogram settles long before this; the competition has 29,603 photos


def hue_prior(paths, bins: int = BINS, progress: bool = True, max_photos: int | None = HUE_PRIOR_MAX_PHOTOS,
              seed: int = 0) -> np.ndarray:
    """Mean hue-angle histogram of colour photos (each photo weighted equally). At most `max_photos` are read
    (a seeded random sample of them; None reads all), so the cost stays bounded on a competition-size set."""
    from .images import read_image

    paths = list(paths)
    if not paths:
        raise ValueError("hue_prior: no photos given")
    if max_photos is not None and len(paths) > max_photos:
        pick = np.random.default_rng(seed).choice(len(paths), max_photos, replace=False)
        paths = [paths[i] for i in np.sort(pick)]
    total = np.zeros(bins)
    for p in tqdm(paths, desc="hue prior", disable=not progress):
        total += angle_histogram(read_image(p, "RGB"), bins)
    return total / total.sum()


def _smooth_circular(h: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return h
    n = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-n, n + 1) / sigma) ** 2)
    wrapped = np.concatenate([h[-n:], h, h[:n]]) if n else h
    return np.convolve(wrapped, k / k.sum(), "same")[n:len(wrapped) - n]


def hue_target(config: HueConfig, own: np.ndarray) -> np.ndarray:
    """The angle histogram `match_hue` aims at: (1 - strength) * own + strength * prior, smoothed."""
    target = own if config.prior is None else (1 - config.strength) * own + config.strength * np.asarray(config.prior)
    return _smooth_circular(target, config.smooth) + 1e-12


def _remap_angles(rgb: np.ndarray, theta: np.ndarray, radius: np.ndarray, movable: np.ndarray,
                  target: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
    """Monotone remap (around the circle) of the chroma angles of the `movable` pixels so their histogram
    follows `target` (angle bins over -pi..pi); radius kept, luma kept exactly, other pixels bit-exact.
    `own`: the movable pixels' normalised histogram in the same bins, when the caller has it already."""
    bins = len(target)
    if own is None:
        own, _ = np.histogram(theta[movable], bins, (-np.pi, np.pi))
        own = own / own.sum()
    target = np.asarray(target, np.float64) + 1e-12
    target = target / target.sum()
    # cut the circle where there is least mass on both sides, then match the two CDFs on the line
    cut = int(np.argmin(_smooth_circular(own + target, 2.0)))
    cut_angle = -np.pi + 2 * np.pi * cut / bins
    u = np.mod(theta[movable] - cut_angle, 2 * np.pi)
    _, inverse, counts = np.unique(u, return_inverse=True, return_counts=True)
    ranks = ((np.cumsum(counts) - counts / 2) / u.size)[inverse.ravel()]   # equal angles keep one hue
    cdf = np.concatenate([[0.0], np.cumsum(np.roll(target, -cut))])
    new_theta = theta.copy()
    new_theta[movable] = np.interp(ranks, cdf / cdf[-1], np.linspace(0, 2 * np.pi, bins + 1)) + cut_angle
    cbcr = np.stack([radius * np.cos(new_theta), radius * np.sin(new_theta)], -1) + 0.5
    out = compose_rgb(pil_luma(rgb).astype(np.uint8), cbcr)
    keep = ~movable
    out[keep] = rgb[keep]          # untouched pixels stay bit-exact
    return out


def match_hue(rgb: np.ndarray, config: HueConfig, mask: np.ndarray | None = None) -> np.ndarray:
    """Remap the chroma angles of `rgb` (uint8 HxWx3) so their histogram follows
    (1 - strength) * own + strength * prior, smoothed. The PIL luma of every pixel is kept exactly."""
    if config.is_identity:
        return rgb
    theta, radius = chroma_polar(rgb)
    movable = radius > MIN_CHROMA
    if mask is not None and config.keep_hole:
        movable &= ~mask
    if movable.sum() < 2:
        return rgb
    bins = BINS if config.prior is None else len(config.prior)
    own, _ = np.histogram(theta[movable], bins, (-np.pi, np.pi))
    own = own / own.sum()
    return _remap_angles(rgb, theta, radius, movable, hue_target(config, own), own)


HSV_BINS = 180          # the metric's hue histogram (OpenCV HSV H of uint8 RGB, 0-179)


def hsv_hue_histogram(rgb: np.ndarray) -> np.ndarray:
    """Pixel counts per OpenCV HSV hue value (0-179) of uint8 RGB: the metric's histogram before normalising."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    return np.bincount(hsv[..., 0].ravel(), minlength=HSV_BINS).astype(np.float64)


@lru_cache(maxsize=4)
def _angle_hsv(bins: int) -> tuple[np.ndarray, np.ndarray]:
    from .hue_head import angle_to_hsv_hue

    m = angle_to_hsv_hue(bins, HSV_BINS)
    return m, np.maximum(m.sum(0), 1e-9)


def match_hsv_hue(rgb: np.ndarray, target: np.ndarray, min_chroma: float) -> np.ndarray:
    """Realise the angle histogram `target` in the metric's own bins: the pixels with chroma above `min_chroma`
    (0-255 Cb/Cr units) are remapped (monotone in angle, radius kept) so that, together with the pixels left
    as they are (pale ones, whose uint8 hue is quantised onto a few values), the image's OpenCV HSV hue
    histogram follows `target` taken to OpenCV's hue bins, as far as non-negative counts allow. Luma exact."""
    theta, radius = chroma_polar(rgb)
    movable = radius > min_chroma / 255.0
    n_mov = int(movable.sum())
    if n_mov < 2:
        return rgb
    to_hsv, per_hsv_bin = _angle_hsv(len(target))
    t = np.asarray(target, np.float64) @ to_hsv
    t = t / t.sum()
    hue = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)[..., 0]
    fixed = np.bincount(hue[~movable], minlength=HSV_BINS).astype(np.float64)
    # the movable pixels' counts: max(s * t - fixed, 0) summing to their number (s by bisection), so the whole
    # histogram is s * t wherever the fixed pixels leave room
    lo, hi = 0.0, float(fixed.sum() + n_mov) * 2.0 / max(t.min(), 1e-12)
    hi = min(hi, 1e12)
    for _ in range(60):
        s = 0.5 * (lo + hi)
        if np.maximum(s * t - fixed, 0).sum() > n_mov:
            hi = s
        else:
            lo = s
    want = np.maximum(lo * t - fixed, 0)
    if want.sum() <= 0:
        return rgb
    return _remap_angles(rgb, theta, radius, movable, to_hsv @ (want / per_hsv_bin))
