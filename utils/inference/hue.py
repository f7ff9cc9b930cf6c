"""The colour post-process: the colour net's own hues, optionally remapped towards the training photos' mean hue
histogram (the *hue prior*) with one strength knob.

The score's hue term correlates the 180-bin hue histograms of the whole prediction and the whole ground truth,
wherever each pixel's hue is. A colorizer that is unsure commits to a few narrow hue peaks, and a peak in the
wrong place correlates negatively. Remapping the prediction's hue distribution towards what photos look like on
average raises the expected correlation, keeping each pixel's luminance exactly and the hue order of the image
(the remap is monotone around the colour circle, so regions of one colour stay one colour). It also makes hues a
person would not paint; `strength` (0 = natural, 1 = the full remap) trades the two, and `edge_radius` smooths
the remap's chroma change along the image's edges (a guided filter on the luminance) so that the moves follow
objects. docs/colour_experiments.md has the measured trade-off (research/colour_frontier.py).

Hue here is the angle of the (Cb, Cr) chroma vector; OpenCV's HSV hue is a monotone function of it, so
matching histograms of the angle matches the metric's histograms too. Pixels with almost no chroma keep
their chroma (their hue is noise). Saturation (the chroma length) is never changed by the remap.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.configs import known_fields
from .color import CB_FROM_RGB, CR_FROM_RGB, RGB_FROM_CB, RGB_FROM_CR, compose_rgb, pil_luma

BINS = 360
MIN_CHROMA = 1.5 / 255


@dataclass
class HueConfig:
    """strength: 0 keeps the colour net's own hues (natural); s in (0, 1] remaps the chroma angles so their
    histogram follows (1 - s) * own + s * prior;
    keep_hole: leave the hole's pixels as they are (they still count in the metric's histogram);
    prior: the mean hue-angle histogram of the training photos (BINS values summing to 1);
    edge_radius: 0, or the radius (px at 512) of a guided filter on the luminance that smooths the remap's
    chroma change, so that it follows objects instead of banding smooth areas; edge_eps: its edge threshold
    (luma 0-1 variance; smaller keeps finer edges)."""
    strength: float = 0.0
    keep_hole: bool = True
    prior: list | None = field(default=None, repr=False)
    edge_radius: int = 0
    edge_eps: float = 1e-2

    def __post_init__(self):
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ValueError(f"HueConfig.strength must be in [0, 1] (0 = natural), got {self.strength!r}")
        if self.prior is not None and (len(self.prior) < 2 or not np.all(np.isfinite(self.prior))
                                       or min(self.prior) < 0 or sum(self.prior) <= 0):
            raise ValueError(
                "HueConfig.prior must be a histogram: >= 2 finite, non-negative values with a positive sum"
            )
        if self.edge_radius < 0 or self.edge_eps <= 0:
            raise ValueError(
                f"HueConfig: edge_radius must be >= 0 and edge_eps > 0, got {self.edge_radius}, {self.edge_eps}"
            )

    @property
    def is_identity(self) -> bool:
        return self.strength == 0 or self.prior is None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> HueConfig:
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


HUE_PRIOR_MAX_PHOTOS = 1000  # a mean histogram settles long before this; the competition has 29,603 photos


def hue_prior(
    paths, bins: int = BINS, progress: bool = True, max_photos: int | None = HUE_PRIOR_MAX_PHOTOS, seed: int = 0
) -> np.ndarray:
    """Mean hue-angle histogram of colour photos (each photo weighted equally). At most `max_photos` are read
    (a seeded random sample of them; None reads all), so the cost stays bounded on a competition-size set."""
    from ..core.images import read_image

    paths = list(paths)
    if not paths:
        raise ValueError("hue_prior: no photos given")
    if max_photos is not None and len(paths) > max_photos:
        pick = np.random.default_rng(seed).choice(len(paths), max_photos, replace=False)
        paths = [paths[i] for i in np.sort(pick)]
    total = np.zeros(bins)
    for p in tqdm(paths, desc="hue prior", disable=not progress):
        total += angle_histogram(read_image(p, "RGB", convert=True), bins)
    return total / total.sum()


def smooth_circular(h: np.ndarray, sigma: float) -> np.ndarray:
    """A histogram over the circle smoothed by a Gaussian of `sigma` bins (wrapping around)."""
    if sigma <= 0:
        return h
    n = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-n, n + 1) / sigma) ** 2)
    wrapped = np.concatenate([h[-n:], h, h[:n]]) if n else h
    return np.convolve(wrapped, k / k.sum(), "same")[n : len(wrapped) - n]


def hue_target(config: HueConfig, own: np.ndarray) -> np.ndarray:
    """The angle histogram `match_hue` aims at: (1 - strength) * own + strength * prior."""
    if config.prior is None:
        return np.asarray(own, np.float64) + 1e-12
    return (1 - config.strength) * np.asarray(own, np.float64) + config.strength * np.asarray(config.prior) + 1e-12


def _remap_angles(theta: np.ndarray, movable: np.ndarray, target: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Monotone remap (around the circle) of the angles of the `movable` pixels so their histogram follows
    `target` (angle bins over -pi..pi; `own` is theirs); -> the new angles (others unchanged)."""
    bins = len(target)
    target = np.asarray(target, np.float64) + 1e-12
    target = target / target.sum()
    # cut the circle where there is least mass on both sides, then match the two CDFs on the line
    cut = int(np.argmin(smooth_circular(own + target, 2.0)))
    cut_angle = -np.pi + 2 * np.pi * cut / bins
    u = np.mod(theta[movable] - cut_angle, 2 * np.pi)
    _, inverse, counts = np.unique(u, return_inverse=True, return_counts=True)
    ranks = ((np.cumsum(counts) - counts / 2) / u.size)[inverse.ravel()]  # equal angles keep one hue
    cdf = np.concatenate([[0.0], np.cumsum(np.roll(target, -cut))])
    new_theta = theta.copy()
    new_theta[movable] = np.interp(ranks, cdf / cdf[-1], np.linspace(0, 2 * np.pi, bins + 1)) + cut_angle
    return new_theta


def match_hue(rgb: np.ndarray, config: HueConfig, mask: np.ndarray | None = None) -> np.ndarray:
    """Remap the chroma angles of `rgb` (uint8 HxWx3) so their histogram follows (1 - strength) * own +
    strength * prior; with `config.edge_radius`, the chroma change is smoothed by a guided filter on the
    luminance first. The PIL luma of every pixel is kept exactly; with `keep_hole`, the hole (`mask`) and,
    without edge smoothing, every pixel with almost no chroma stay bit-exact."""
    if config.is_identity:
        return rgb
    theta, radius = chroma_polar(rgb)
    movable = radius > MIN_CHROMA
    hole = None
    if mask is not None and config.keep_hole:
        hole = np.asarray(mask, bool)
        movable &= ~hole
    if movable.sum() < 2:
        return rgb
    bins = len(config.prior)
    own, _ = np.histogram(theta[movable], bins, (-np.pi, np.pi))
    own = own / own.sum()
    new_theta = _remap_angles(theta, movable, hue_target(config, own), own)
    y = pil_luma(rgb).astype(np.uint8)
    if config.edge_radius:
        from .chroma import guided_filter  # chroma imports nothing of this module

        old = np.stack([radius * np.cos(theta), radius * np.sin(theta)], -1)
        new = np.stack([radius * np.cos(new_theta), radius * np.sin(new_theta)], -1)
        change = guided_filter(
            y.astype(np.float32) / 255.0, new - old, config.edge_radius, config.edge_eps, subsample=4
        )
        out = compose_rgb(y, old + change + 0.5)
        keep = hole if hole is not None else np.zeros(movable.shape, bool)
    else:
        out = compose_rgb(y, np.stack([radius * np.cos(new_theta), radius * np.sin(new_theta)], -1) + 0.5)
        keep = ~movable
    out[keep] = rgb[keep]  # untouched pixels stay bit-exact
    return out


STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
CHANGE_BUDGET = 15.7  # CIEDE2000, 95th percentile per image, mean over images: the visible change of the five-step
# colour chain (hue head + OpenCV pass) on 70 unseen photos (docs/colour_experiments.md)
EDGE_RADIUS, EDGE_EPS = 32, 1e-2  # the remap's change smoothed along the luminance: measured to pay at every strength


def visible_change(natural: np.ndarray, other: np.ndarray, q: float = 95.0) -> float:
    """How visibly `other` differs from `natural` (uint8 RGB of one size): the q-th percentile over pixels of
    CIEDE2000 between them (on CIE Lab). 0 for equal images; about 2 is just noticeable, 10+ another colour."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    if natural.shape != other.shape:
        raise ValueError(f"visible_change: images of other shapes, {natural.shape} and {other.shape}")
    if np.array_equal(natural, other):
        return 0.0
    return float(np.percentile(deltaE_ciede2000(rgb2lab(natural), rgb2lab(other)), q))


def choose_hue_strength(
    naturals,
    gts,
    masks,
    prior,
    strengths=STRENGTHS,
    max_change: float = CHANGE_BUDGET,
    edge_radius: int = EDGE_RADIUS,
    edge_eps: float = EDGE_EPS,
    progress: bool = False,
):
    """The submission strength of the hue remap, chosen on validation images: each strength's mean score (the
    competition metric against `gts`) and mean visible change from the natural colours (`naturals`, the colour
    net's own output); the chosen one scores most among those whose visible change is at most `max_change`.
    -> (HueConfig with that strength and `prior`, table with one row per strength)."""
    from ..core.metric import score_image

    naturals, gts, masks = list(naturals), list(gts), list(masks)
    if not naturals or not len(naturals) == len(gts) == len(masks):
        raise ValueError(
            f"choose_hue_strength: need as many naturals, truths and masks (got {len(naturals)}, "
            f"{len(gts)}, {len(masks)}), at least one"
        )
    prior = [float(x) for x in prior]
    rows = []
    for s in tqdm(list(strengths), desc="hue strengths", disable=not progress):
        cfg = HueConfig(float(s), True, prior, edge_radius, edge_eps)
        scores, change = [], []
        for nat, gt, m in zip(naturals, gts, masks):
            out = match_hue(nat, cfg, m)
            scores.append(score_image(gt, out, m))
            change.append(visible_change(nat, out))
        rows.append(
            {
                "strength": float(s),
                **{k: float(np.mean([r[k] for r in scores])) for k in ("score", "ssim", "masked_ssim", "hue")},
                "change95": float(np.mean(change)),
            }
        )
    table = pd.DataFrame(rows).set_index("strength")
    allowed = table[table["change95"] <= max_change]
    best = float(allowed["score"].idxmax()) if len(allowed) else 0.0
    return HueConfig(best, True, prior, edge_radius, edge_eps), table


def angle_to_hsv_hue(bins: int = BINS, hue_bins: int = 180, samples: int = 16) -> np.ndarray:
    """[bins, hue_bins] matrix taking a chroma-angle histogram to the metric's OpenCV HSV hue histogram (hue is
    a monotone but uneven function of the angle, so correlations differ between the two spaces)."""
    theta = -np.pi + (np.arange(bins * samples) + 0.5) * 2 * np.pi / (bins * samples)
    d = 0.1 * np.cos(theta)[:, None] * RGB_FROM_CB + 0.1 * np.sin(theta)[:, None] * RGB_FROM_CR
    rgb = (0.5 + d).astype(np.float32)[None]
    hue = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[0, :, 0]  # degrees 0-360
    hb = np.minimum((hue / 360.0 * hue_bins).astype(int), hue_bins - 1)
    m = np.zeros((bins, hue_bins))
    np.add.at(m, (np.repeat(np.arange(bins), samples), hb), 1.0 / samples)
    return m


def bins_to_angles(bin_centers: np.ndarray, bins: int = BINS, min_sigma_deg: float = 2.0) -> np.ndarray:
    """[K,2] chroma-bin centres (Cb, Cr offsets) of a classification colour net -> [K,bins] matrix spreading each
    bin's mass over the angle bins it covers (a wrapped Gaussian as wide as the bin seen from the origin); the
    neutral bin gets none. (The classify+hist loss's soft hue histogram, utils.losses.HueHistogramLoss.)"""
    bc = np.asarray(bin_centers, np.float64)
    radius = np.hypot(bc[:, 0], bc[:, 1])
    theta = np.arctan2(bc[:, 1], bc[:, 0])
    spacing = np.min(np.diff(np.unique(np.round(bc[:, 0], 6)))) if len(bc) > 1 else 0.05
    centres = -np.pi + (np.arange(bins) + 0.5) * 2 * np.pi / bins
    out = np.zeros((len(bc), bins))
    for k in range(len(bc)):
        if radius[k] <= MIN_CHROMA:
            continue
        sigma = max(spacing / (2 * radius[k]), np.deg2rad(min_sigma_deg))
        d = np.angle(np.exp(1j * (centres - theta[k])))
        w = np.exp(-0.5 * (d / sigma) ** 2)
        out[k] = w / w.sum()
    return out


def pearson_loss(pred, target):
    """Mean over the batch of 1 - Pearson correlation of histograms [B,bins] (torch tensors; the score's hue
    term as a loss)."""
    p = pred - pred.mean(-1, keepdim=True)
    t = target - target.mean(-1, keepdim=True)
    r = (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1) + 1e-12)
    return (1 - r).mean()


__all__ = ["HueConfig", "choose_hue_strength", "hue_prior", "match_hue", "visible_change"]
