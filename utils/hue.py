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
    prior: the mean hue-angle histogram of the training photos (BINS values summing to 1)."""
    strength: float = 0.0
    smooth: float = 0.0
    keep_hole: bool = True
    prior: list | None = field(default=None, repr=False)

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
    target = own if config.prior is None else (1 - config.strength) * own + config.strength * np.asarray(config.prior)
    target = _smooth_circular(target, config.smooth) + 1e-12
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


