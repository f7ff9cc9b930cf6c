"""Losses of the three stages, selected by name (configured, not hard-coded): the names, the default loss and its
weights are the stage configs' (utils.train_config)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.train_config import (
    COLOR_LOSSES,
    INPAINT_LOSSES,
    MASK_LOSSES,
    MEASURED_DEFAULT,
    STAGE_LOSSES,
    ColorConfig,
    InpaintConfig,
    MaskConfig,
)
from ..inference.color import rgb_to_cbcr


class PerceptualLoss(nn.Module):
    """L1 between frozen ImageNet features of two RGB images (0-1).

    net='efficientnet_lite0': the packaged offline Lite0 weights (no internet);
    net='vgg16': torchvision's VGG16 (needs internet the first time). Never a random network:
    a missing weight source raises.
    """

    def __init__(self, net: str = "efficientnet_lite0", layers=(1, 2, 3)):
        super().__init__()
        self.net_name = net
        if net in ("efficientnet_lite0", "tf_efficientnet_lite0"):
            import timm

            from ..core.models import load_pretrained_backbone

            full = load_pretrained_backbone("tf_efficientnet_lite0", "offline")
            self.features = timm.create_model("tf_efficientnet_lite0", features_only=True, out_indices=layers)
            self.features.load_state_dict(full.state_dict(), strict=False)
            self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))
            self.register_buffer("std", torch.full((1, 3, 1, 1), 0.5))
        elif net == "vgg16":
            from torchvision.models import VGG16_Weights, vgg16

            try:
                vgg = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features[:16]
            except Exception as e:  # noqa: BLE001
                raise RuntimeError(
                    f"VGG16 ImageNet weights unavailable ({e}); use net='efficientnet_lite0' offline"
                ) from e
            taps = {3, 8, 15}  # relu1_2, relu2_2, relu3_3
            self.features = _Taps(vgg, taps)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        else:
            raise ValueError(f"unknown perceptual net {net!r}")
        self.features.eval().requires_grad_(False)

    def train(self, mode: bool = True):  # the feature network stays in eval mode
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        fp = self.features((pred - self.mean) / self.std)
        with torch.no_grad():
            ft = self.features((target - self.mean) / self.std)
        return sum(F.l1_loss(a.float(), b.float()) for a, b in zip(fp, ft)) / len(fp)


class _Taps(nn.Module):
    def __init__(self, seq: nn.Sequential, taps):
        super().__init__()
        self.seq, self.taps = seq, set(taps)

    def forward(self, x):
        out = []
        for i, layer in enumerate(self.seq):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    p = torch.sigmoid(logits.float())
    inter = (p * target).sum((1, 2, 3))
    return (1 - (2 * inter + eps) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + eps)).mean()


class MaskLoss(nn.Module):
    """Stage 1 loss by name: the design's 'l2+perceptual' (MSE on the probability map plus a perceptual
    term on it), 'bce', 'dice' or 'bce+dice'."""

    def __init__(
        self, kind: str = MaskConfig.loss, perceptual_weight: float = 0.1, perceptual_net: str = "efficientnet_lite0"
    ):
        super().__init__()
        if kind not in MASK_LOSSES:
            raise ValueError(f"mask loss {kind!r} not in {MASK_LOSSES}")
        self.kind, self.w = kind, perceptual_weight
        self.perceptual = PerceptualLoss(perceptual_net) if "perceptual" in kind else None

    def forward(self, logits, target) -> dict:
        logits = logits.float()
        parts = {}
        if self.kind == "l2+perceptual":
            p = torch.sigmoid(logits)
            parts["l2"] = F.mse_loss(p, target)
            parts["perceptual"] = self.w * self.perceptual(p, target)
        if "bce" in self.kind:
            parts["bce"] = F.binary_cross_entropy_with_logits(logits, target)
        if "dice" in self.kind:
            parts["dice"] = dice_loss(logits, target)
        parts["loss"] = sum(parts.values())
        return parts


def hue_loss(pred_cbcr: torch.Tensor, true_cbcr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Chroma-direction loss: 1 - cos(angle between predicted and true chroma), weighted by the true
    chroma magnitude (gray pixels have no hue)."""
    p, t = pred_cbcr - 0.5, true_cbcr - 0.5
    tn = t.norm(dim=1)
    cos = (p * t).sum(1) / (p.norm(dim=1) * tn + eps)
    return (tn * (1 - cos)).mean() / (tn.mean() + eps)


L1_CHROMA_SCALE = 10.0  # chroma L1 (errors of 0.01-0.05 in 0-1 units) brought to the perceptual term's scale


class RebalancedBinLoss(nn.Module):
    """Cross-entropy against soft-encoded chroma bins (Gaussian over bin centres) at 1/4 resolution,
    re-weighted by the inverse of a running estimate of the bin prior mixed with uniform (`mix`, Zhang et al.'s
    lambda: 0.5 as in their paper, so that rare saturated colours are not drowned by desaturated ones; 1.0: every
    pixel weighs the same, plain cross-entropy)."""

    def __init__(
        self, bin_centers: torch.Tensor, sigma: float = 0.04, mix: float = 0.5, momentum: float = 0.99, pool: int = 4
    ):
        super().__init__()
        self.sigma, self.mix, self.momentum, self.pool = sigma, mix, momentum, pool
        self.register_buffer("centers", bin_centers.clone())
        self.register_buffer("prior", torch.full((len(bin_centers),), 1.0 / len(bin_centers)))

    def forward(self, logits, true_cbcr):
        logits = F.avg_pool2d(logits.float(), self.pool)
        t = F.avg_pool2d(true_cbcr.float(), self.pool) - 0.5  # [B,2,h,w]
        d2 = ((t.unsqueeze(1) - self.centers.view(1, -1, 2, 1, 1)) ** 2).sum(2)  # [B,K,h,w]
        target = torch.softmax(-d2 / (2 * self.sigma**2), 1)
        with torch.no_grad():
            self.prior.mul_(self.momentum).add_((1 - self.momentum) * target.mean((0, 2, 3)))
            w = 1.0 / ((1 - self.mix) * self.prior + self.mix / len(self.prior))
            w = w / (self.prior * w).sum()
            pix_w = (target * w.view(1, -1, 1, 1)).sum(1)  # weight of each pixel's colour
        ce = -(target * torch.log_softmax(logits, 1)).sum(1)
        return (ce * pix_w).mean()


class HueHistogramLoss(nn.Module):
    """The score's hue term as a loss (it is differentiable): 1 - Pearson correlation, per image, between the net's
    soft hue histogram and the true image's hue histogram, both in OpenCV's 180 hue bins. The soft histogram is the
    per-pixel bin probabilities (softmax at temperature 1, as the hue head reads them) averaged over the image,
    spread onto the chroma-angle circle (`utils.hue.bins_to_angles`) and taken to hue bins
    (`angle_to_hsv_hue`); the truth's counts its pixels with visible chroma. It trains the net's global colour
    distribution per photo, which the per-pixel classification loss only reaches through each pixel."""

    def __init__(self, bin_centers: torch.Tensor):
        super().__init__()
        from ..inference.hue import BINS, MIN_CHROMA, angle_to_hsv_hue, bins_to_angles

        a2h = angle_to_hsv_hue(BINS)
        self.bins, self.min_chroma = BINS, MIN_CHROMA
        self.register_buffer(
            "bin_to_hue", torch.tensor(bins_to_angles(bin_centers.cpu().numpy(), BINS) @ a2h, dtype=torch.float32)
        )
        self.register_buffer("angle_to_hue", torch.tensor(a2h, dtype=torch.float32))

    def true_histogram(self, true_cbcr: torch.Tensor) -> torch.Tensor:
        """[B,2,H,W] chroma in 0-1 -> [B,180] hue-bin counts of the pixels with visible chroma."""
        t = true_cbcr.float() - 0.5
        theta, radius = torch.atan2(t[:, 1], t[:, 0]), torch.hypot(t[:, 0], t[:, 1])
        idx = ((theta + math.pi) / (2 * math.pi) * self.bins).long().clamp(0, self.bins - 1).flatten(1)
        counts = torch.zeros(t.shape[0], self.bins, device=t.device)
        counts.scatter_add_(1, idx, (radius > self.min_chroma).float().flatten(1))
        return counts @ self.angle_to_hue

    def forward(self, logits: torch.Tensor, true_cbcr: torch.Tensor) -> torch.Tensor:
        from ..inference.hue import pearson_loss

        mass = torch.softmax(logits.float(), 1).mean((2, 3))  # [B,K]
        return pearson_loss(mass @ self.bin_to_hue, self.true_histogram(true_cbcr))


class ColorLoss(nn.Module):
    """Stage 2 loss by name over predicted chroma; the perceptual term compares RGB images built from
    the true luminance and the predicted vs true chroma."""

    def __init__(
        self,
        kind: str = ColorConfig.loss,
        l1_weight: float = 1.0,
        hue_weight: float = 0.5,
        perceptual_net: str = "efficientnet_lite0",
        bin_centers: torch.Tensor | None = None,
        hist_weight: float = 1.0,
        rebalance_lambda: float = ColorConfig.rebalance_lambda,
    ):
        super().__init__()
        if kind not in COLOR_LOSSES:
            raise ValueError(f"colour loss {kind!r} not in {COLOR_LOSSES}")
        self.kind, self.l1_w, self.hue_w, self.hist_w = kind, l1_weight, hue_weight, hist_weight
        self.perceptual = PerceptualLoss(perceptual_net) if "perceptual" in kind else None
        if kind.startswith("classify") and bin_centers is None:
            raise ValueError("the 'classify' losses need the network's bin centres (a head='classes' ColorizationNet)")
        self.bins = RebalancedBinLoss(bin_centers, mix=rebalance_lambda) if kind.startswith("classify") else None
        self.hist = HueHistogramLoss(bin_centers) if "hist" in kind else None

    def forward(self, pred_cbcr, rgb, luma, logits=None) -> dict:
        from ..inference.color import ycbcr_to_rgb

        pred_cbcr = pred_cbcr.float()
        true_cbcr = rgb_to_cbcr(rgb)
        parts = {}
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(ycbcr_to_rgb(luma, pred_cbcr), rgb)
        if "l1" in self.kind:  # x10: chroma errors are ~0.01-0.05, so L1 sits near the perceptual term's scale
            parts["l1"] = self.l1_w * F.l1_loss(pred_cbcr, true_cbcr) * L1_CHROMA_SCALE
        if "hue" in self.kind:
            parts["hue"] = self.hue_w * hue_loss(pred_cbcr, true_cbcr)
        if self.bins is not None:
            parts["bins"] = self.bins(logits, true_cbcr)
        if self.hist is not None:
            parts["hist"] = self.hist_w * self.hist(logits, true_cbcr)
        parts["loss"] = sum(parts.values())
        return parts


def masked_ssim(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, win: int = 7, data_range: float = 1.0
) -> torch.Tensor:
    """The competition's masked SSIM, differentiable: per image and channel, the hole's pixels in raster order as a
    1-D signal, SSIM with a uniform window of `win` and sample covariances (as skimage's structural_similarity, whose
    filtered signal is cropped by win//2 at each end), averaged over the valid positions; mean over the batch.
    pred/target [B,C,H,W], mask [B,1,H,W]. Images with fewer than win hole pixels are left out."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    norm = win / (win - 1)
    kernel = torch.full((1, 1, win), 1.0 / win, dtype=torch.float32, device=pred.device)
    values = []
    for b in range(pred.shape[0]):
        sel = mask[b, 0] > 0.5
        if int(sel.sum()) < win:
            continue
        x = pred[b][:, sel].float().unsqueeze(1)  # [C,1,N]
        y = target[b][:, sel].float().unsqueeze(1)
        mx, my = F.conv1d(x, kernel), F.conv1d(y, kernel)
        vx = norm * (F.conv1d(x * x, kernel) - mx * mx)
        vy = norm * (F.conv1d(y * y, kernel) - my * my)
        cxy = norm * (F.conv1d(x * y, kernel) - mx * my)
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s.mean())
    if not values:
        return pred.sum() * 0 + 1.0
    return torch.stack(values).mean()


class InpaintLoss(nn.Module):
    """Stage 3 generator loss by name, on the hole: L1 (always, weighted on the hole), plus the adversarial term
    (hinge, 'gan', weight `gan_weight`; 'l1+gan' is the design's), the metric's own masked SSIM ('mssim',
    1 - masked_ssim, weight `ssim_weight`) and a perceptual term ('perceptual': frozen ImageNet features,
    weight `perceptual_weight`)."""

    def __init__(
        self,
        kind: str = InpaintConfig.loss,
        hole_weight: float = InpaintConfig.hole_weight,
        valid_weight: float = 1.0,
        ssim_weight: float = InpaintConfig.ssim_weight,
        gan_weight: float = InpaintConfig.gan_weight,
        perceptual_weight: float = 0.1,
    ):
        super().__init__()
        if kind not in INPAINT_LOSSES:
            raise ValueError(f"inpaint loss {kind!r} not in {INPAINT_LOSSES}")
        self.kind = kind
        self.hole_w, self.valid_w = hole_weight, valid_weight
        parts = kind.split("+")
        self.ssim_w = ssim_weight if "mssim" in parts else 0.0
        self.gan_w = gan_weight if "gan" in parts else 0.0
        self.perceptual_w = perceptual_weight if "perceptual" in parts else 0.0
        self.perceptual = PerceptualLoss() if self.perceptual_w else None

    def forward(self, out, target, mask, fake_logits=None) -> dict:
        out = out.float()
        err = (out - target).abs()
        parts = {"l1": (self.hole_w * (err * mask).sum() + self.valid_w * (err * (1 - mask)).sum()) / err.numel()}
        if self.ssim_w > 0:
            parts["mssim"] = self.ssim_w * (1 - masked_ssim(out, target, mask))
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual_w * self.perceptual(out, target)
        if self.gan_w > 0 and fake_logits is not None:
            parts["gan"] = -self.gan_w * fake_logits.float().mean()
        parts["loss"] = sum(parts.values())
        return parts


def discriminator_hinge_loss(real_logits, fake_logits) -> torch.Tensor:
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


# ---------------------------------------------------------------- choosing a loss
# Each stage's loss comparison (the training notebooks' "Which loss?") is read on one validation metric; without
# one, 'auto' is the loss that won the recorded comparison (weights/README.md, "Training"), each stage config's
# default loss (MEASURED_DEFAULT): mask BCE+Dice (best recall), colour the classification loss (the design's
# perceptual+L1 collapses to a sepia mean), inpaint L1 + the metric's masked SSIM (held-out masked SSIM).
COMPARISON_METRIC = {"mask": "val_recall", "color": "val_score", "inpaint": "val_masked_ssim"}


def choose_loss(stage: str, loss: str = "auto", comparison=None) -> str:
    """The loss a stage trains with: `loss` itself when named; for 'auto', the best row of `comparison`
    (a table indexed by loss, from utils.compare_options) on the stage's COMPARISON_METRIC, else the
    MEASURED_DEFAULT."""
    if stage not in STAGE_LOSSES:
        raise ValueError(f"stage must be one of {tuple(STAGE_LOSSES)}, got {stage!r}")
    if loss != "auto":
        if loss not in STAGE_LOSSES[stage]:
            raise ValueError(f"{stage} loss {loss!r} not in {STAGE_LOSSES[stage]}")
        return loss
    if comparison is None or len(comparison) == 0:
        return MEASURED_DEFAULT[stage]
    if isinstance(comparison, dict):  # {loss: {metric: value}}, as the model card reads the comparison runs
        return max(comparison, key=lambda k: comparison[k].get(COMPARISON_METRIC[stage], float("-inf")))
    return str(comparison[COMPARISON_METRIC[stage]].idxmax())


__all__ = ["ColorLoss", "InpaintLoss", "MaskLoss", "PerceptualLoss", "choose_loss"]
