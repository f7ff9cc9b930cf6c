"""A per-photo hue (chroma-angle) distribution, predicted from what the colour net says about the gray photo.

The hue term of the score correlates the hue histograms of prediction and truth. The colour net's decoded
chroma commits to a few hue peaks; its per-pixel bin probabilities hold more (their sum over the image is the
net's expected hue distribution), and the mean histogram of training photos (the prior) holds what photos
look like on average. `HueHead` combines them log-linearly, per angle bin,

    log target = w_prior * log prior + w_soft * log soft + w_own * log own + bias,   softmax-normalised,

with a handful of weights trained on many random crops of the training photos against the metric's own term,
1 - Pearson correlation of the histograms (differentiable). Where the net is unsure its histograms are flat and
the prior dominates the product: the fall-back towards the prior. The prediction is realised by `match_hue`
(the remap of the chroma angles, which keeps luminance exactly).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn as nn

from .hue import BINS, MIN_CHROMA, _smooth_circular

EPS = 1e-4


def bins_to_angles(bin_centers: np.ndarray, bins: int = BINS, min_sigma_deg: float = 2.0) -> np.ndarray:
    """[K,2] chroma-bin centres (Cb, Cr offsets) -> [K,bins] matrix spreading each bin's mass over the angle
    bins it covers (a wrapped Gaussian as wide as the bin seen from the origin); the neutral bin gets none."""
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


def soft_angle_histogram(bin_mass: np.ndarray, bin_to_angle: np.ndarray) -> np.ndarray:
    """[B,K] bin mass (from `utils.chroma.net_bin_probabilities`) -> [B,bins] normalised angle histograms."""
    h = np.asarray(bin_mass) @ bin_to_angle
    return h / np.maximum(h.sum(-1, keepdims=True), 1e-12)


def own_feature(own_hist: np.ndarray, smooth: float = 8.0) -> np.ndarray:
    """The decoded image's own angle histogram, smoothed (its peaks are narrow)."""
    own = np.atleast_2d(own_hist)
    return np.stack([_smooth_circular(h, smooth) for h in own])


def angle_to_hsv_hue(bins: int = BINS, hue_bins: int = 180, samples: int = 16) -> np.ndarray:
    """[bins, hue_bins] matrix taking a chroma-angle histogram to the metric's OpenCV HSV hue histogram (hue is
    a monotone but uneven function of the angle, so correlations differ between the two spaces)."""
    from .color import RGB_FROM_CB, RGB_FROM_CR

    theta = -np.pi + (np.arange(bins * samples) + 0.5) * 2 * np.pi / (bins * samples)
    d = 0.1 * np.cos(theta)[:, None] * RGB_FROM_CB + 0.1 * np.sin(theta)[:, None] * RGB_FROM_CR
    rgb = (0.5 + d).astype(np.float32)[None]
    hue = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[0, :, 0]          # degrees 0-360
    hb = np.minimum((hue / 360.0 * hue_bins).astype(int), hue_bins - 1)
    m = np.zeros((bins, hue_bins))
    np.add.at(m, (np.repeat(np.arange(bins), samples), hb), 1.0 / samples)
    return m


def pearson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - Pearson correlation of histograms [B,bins] (the score's hue term)."""
    p = pred - pred.mean(-1, keepdim=True)
    t = target - target.mean(-1, keepdim=True)
    r = (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1) + 1e-12)
    return (1 - r).mean()


class HueHead(nn.Module):
    """Log-linear combination of the prior, the net's soft histogram and the decoded image's own histogram."""

    FEATURES = ("prior", "soft", "own")

    def __init__(self, prior, bins: int = BINS):
        super().__init__()
        prior = torch.as_tensor(np.asarray(prior, np.float32))
        if prior.shape != (bins,):
            raise ValueError(f"prior must have {bins} bins, got {tuple(prior.shape)}")
        self.register_buffer("log_prior", torch.log(prior / prior.sum() + EPS))
        self.weights = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))   # starts as the prior (the blind guess)
        self.gates = nn.Parameter(torch.zeros(3))      # weights change with the net's confidence (see forward)
        self.bias = nn.Parameter(torch.zeros(bins))

    def forward(self, soft: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """[B,bins] soft and own histograms -> [B,bins] predicted hue histogram (sums to 1). Each weight is
        w + g * confidence, confidence = 1 - entropy(soft) / log(bins) (0 for a flat soft histogram)."""
        conf = 1 - (-(soft * torch.log(soft + 1e-12)).sum(-1, keepdim=True)) / np.log(soft.shape[-1])
        w = self.weights + self.gates * conf                      # [B,3]
        logits = (w[:, 0:1] * self.log_prior + w[:, 1:2] * torch.log(soft + EPS)
                  + w[:, 2:3] * torch.log(own + EPS) + self.bias)
        return torch.softmax(logits, -1)

    @torch.inference_mode()
    def predict(self, soft: np.ndarray, own: np.ndarray) -> np.ndarray:
        t = lambda a: torch.as_tensor(np.atleast_2d(a), dtype=torch.float32)  # noqa: E731
        return self(t(soft), t(own)).numpy().astype(np.float64)

    def target(self, bin_mass: np.ndarray, own_hist: np.ndarray) -> np.ndarray:
        """One image: the colour net's bin mass [K] and the image's angle histogram [bins] -> the predicted
        histogram [bins] (needs `bin_to_angle`, set by `from_record`)."""
        soft = soft_angle_histogram(np.atleast_2d(bin_mass), self.bin_to_angle)
        return self.predict(soft, own_feature(own_hist, self.own_smooth))[0]

    def to_record(self, own_smooth: float) -> dict:
        return {"weights": self.weights.detach().tolist(), "gates": self.gates.detach().tolist(),
                "bias": self.bias.detach().tolist(), "own_smooth": own_smooth}

    @classmethod
    def from_record(cls, prior, record: dict, bin_centers: np.ndarray) -> "HueHead":
        """The head stored in a colour checkpoint's inference config (see tools/fit_hue_head.py)."""
        head = cls(prior, len(prior))
        try:
            with torch.no_grad():
                head.weights.copy_(torch.as_tensor(record["weights"], dtype=torch.float32))
                head.bias.copy_(torch.as_tensor(record["bias"], dtype=torch.float32))
                head.gates.copy_(torch.as_tensor(record.get("gates", [0.0, 0.0, 0.0]), dtype=torch.float32))
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"hue_head record does not fit a {len(prior)}-bin head: {e}") from e
        head.own_smooth = float(record.get("own_smooth", 8.0))
        head.bin_to_angle = bins_to_angles(bin_centers, len(prior))
        return head.eval()


def fit_hue_head(head: HueHead, soft: np.ndarray, own: np.ndarray, true: np.ndarray, steps: int = 600,
                 lr: float = 0.05, bias_l2: float = 1e-2, batch: int = 64, seed: int = 0,
                 space: np.ndarray | None = None) -> list[float]:
    """Train `head` on features of many crops: minimise 1 - correlation with the true histograms (+ an L2 pull
    of the per-bin bias to 0). `space`: a [bins, n] matrix both histograms are taken through before the
    correlation (`angle_to_hsv_hue()`: the metric's own hue bins). -> the loss of each step."""
    g = torch.Generator().manual_seed(seed)
    soft, own, true = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in (soft, own, true))
    m = None if space is None else torch.as_tensor(space, dtype=torch.float32)
    if m is not None:
        true = true @ m
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(true), (min(batch, len(true)),), generator=g)
        pred = head(soft[idx], own[idx])
        loss = pearson_loss(pred if m is None else pred @ m, true[idx]) + bias_l2 * head.bias.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
