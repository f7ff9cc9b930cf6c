"""The three training stages: model + loss + optimizer + a NaN-guarded step + checkpointing, and the
per-epoch validation of each stage on its own (see `utils.training.fit`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .baselines import telea
from .color import compose_rgb
from .data import to_tensor_sample
from .losses import ColorLoss, InpaintLoss, MaskLoss, discriminator_hinge_loss
from .mask_refine import RefineConfig, mask_stats, refine_mask
from .metric import score_image
from .models import ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, model_config
from .pipeline import colorize_chroma, inpaint, mask_probability
from .training import autocast, default_amp, is_finite, load_model, save_model


class Stage:
    """Shared machinery; subclasses set `name`, `nets` {stem: (module, config)}, `opts` and `train_step`."""

    name = "stage"

    def __init__(self, device, amp: bool | None, size: int):
        self.device, self.size = torch.device(device), size
        self.amp = default_amp(self.device) if amp is None else amp
        self.nets: dict = {}
        self.opts: dict = {}

    @property
    def net(self):
        return self.nets[self.name][0]

    def inference_config(self) -> dict:
        return {"size": self.size}

    def train_mode(self):
        for m, _ in self.nets.values():
            m.train()

    def eval_mode(self):
        for m, _ in self.nets.values():
            m.eval()

    @staticmethod
    def batch_is_finite(batch: dict) -> bool:
        """A non-finite input would poison BatchNorm running statistics in the forward pass: skip it."""
        return all(bool(torch.isfinite(v).all()) for v in batch.values() if torch.is_tensor(v))

    def _step(self, opt, loss, params) -> bool:
        """Backward + step unless the loss is non-finite (then the step is skipped)."""
        opt.zero_grad(set_to_none=True)
        if not is_finite(loss):
            return False
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return True

    def save(self, ckpt_dir, extra: dict):
        for stem, (m, cfg) in self.nets.items():
            save_model(m, {**cfg, "stage": self.name, "inference": self.inference_config(), **extra}, Path(ckpt_dir) / stem)

    def state(self) -> dict:
        return {"optimizers": {k: o.state_dict() for k, o in self.opts.items()}}

    def settings(self) -> dict:
        """What a resumed run must share with the checkpoint it resumes (`fit` refuses a mismatch): the loss
        and its weights, each optimizer's learning rates, the networks' configs and the working size."""
        loss = getattr(self, "loss", None)
        loss_desc = {k: v for k, v in vars(loss).items() if isinstance(v, (str, int, float, bool))} if loss is not None else None
        return {"loss": loss_desc,
                "lr": {k: [g.get("initial_lr", g["lr"]) for g in o.param_groups] for k, o in self.opts.items()},
                "nets": {stem: {k: v for k, v in cfg.items() if k != "inference"} for stem, (_, cfg) in self.nets.items()},
                "size": self.size}

    def load_state(self, state: dict, ckpt_dir):
        for stem, (m, _) in self.nets.items():
            loaded, _ = load_model(Path(ckpt_dir) / stem, "cpu")
            m.load_state_dict(loaded.state_dict())
        for k, o in self.opts.items():
            o.load_state_dict(state["optimizers"][k])


def _prepare(net, device):
    return net.to(device).to(memory_format=torch.channels_last)


def _cl(x, device):
    return x.to(device).contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- stage 1
class MaskStage(Stage):
    name = "mask"

    def __init__(self, loss: str = "bce+dice", lr: float = 1e-3, device="cpu", amp: bool | None = None, size: int = 256,
                 refine: RefineConfig | None = None, **model_kwargs):
        super().__init__(device, amp, size)
        self.refine = refine or RefineConfig()
        net = _prepare(MaskNet(**model_kwargs), self.device)
        self.nets = {"mask": (net, model_config("MaskNet", **model_kwargs))}
        self.loss = MaskLoss(loss).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)}

    def inference_config(self):
        return {"size": self.size, "refine": self.refine.to_dict()}

    def train_step(self, batch):
        if not self.batch_is_finite(batch):
            return None
        x, y = _cl(batch["gray"], self.device), batch["mask"].to(self.device)
        with autocast(self.device, self.amp):
            parts = self.loss(self.net(x), y)
        if not self._step(self.opts["opt"], parts["loss"], self.net.parameters()):
            return None
        return {k: float(v.detach()) for k, v in parts.items()}


def validate_mask(stage: MaskStage, val_ds, batch_size: int = 8) -> dict:
    """Raw (thresholded network) and refined mask IoU / precision / recall at full size."""
    raw, ref = [], []
    for start in range(0, len(val_ds), batch_size):
        samples = [val_ds.sample(i) for i in range(start, min(start + batch_size, len(val_ds)))]
        probs = mask_probability(stage.net, [s["gray"] for s in samples], stage.size)
        for s, p in zip(samples, probs):
            raw.append(mask_stats(p > 0.5, s["mask"]))
            ref.append(mask_stats(refine_mask(s["gray"], p, stage.refine), s["mask"]))
    out = {f"val_{k}_raw": float(np.mean([r[k] for r in raw])) for k in ("iou", "precision", "recall")}
    out.update({f"val_{k}": float(np.mean([r[k] for r in ref])) for k in ("iou", "precision", "recall")})
    out["val_min_recall"] = float(min(r["recall"] for r in ref))
    return out


# ---------------------------------------------------------------- stage 2
class ColorStage(Stage):
    name = "color"

    def __init__(self, loss: str = "perceptual+l1", lr: float = 5e-4, device="cpu", amp: bool | None = None,
                 size: int = 256, **model_kwargs):
        super().__init__(device, amp, size)
        if loss.startswith("classify"):
            model_kwargs.setdefault("head", "classes")
        net = _prepare(ColorizationNet(**model_kwargs), self.device)
        self.nets = {"color": (net, model_config("ColorizationNet", **model_kwargs))}
        self.chroma_gain = 1.0
        self.loss = ColorLoss(loss, bin_centers=net.bin_centers if net.head == "classes" else None).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)}

    def inference_config(self):
        return {"size": self.size, "chroma_gain": self.chroma_gain}

    def train_step(self, batch):
        if not self.batch_is_finite(batch):
            return None
        g, m, rgb = _cl(batch["gray"], self.device), _cl(batch["mask"], self.device), batch["rgb"].to(self.device)
        luma = (0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])  # the true luminance
        with autocast(self.device, self.amp):
            cbcr, logits = self.net(g, m, return_logits=True)
            parts = self.loss(cbcr, rgb, luma, logits)
        if not self._step(self.opts["opt"], parts["loss"], self.net.parameters()):
            return None
        return {k: float(v.detach()) for k, v in parts.items()}


def _color_scores(net, val_ds, size: int, gains, batch_size: int = 8) -> dict:
    """{gain: [score rows]}: predicted chroma (times gain) on the true luminance, competition metric."""
    rows = {g: [] for g in gains}
    for start in range(0, len(val_ds), batch_size):
        samples = [val_ds.sample(i) for i in range(start, min(start + batch_size, len(val_ds)))]
        chroma = colorize_chroma(net, [s["gray"] for s in samples], [s["mask"] for s in samples], size)
        for s, c in zip(samples, chroma):
            for g in gains:
                rows[g].append(score_image(s["rgb"], compose_rgb(s["clean_gray"], c, g), s["mask"]))
    return rows


def validate_color(stage: ColorStage, val_ds, batch_size: int = 8) -> dict:
    """The stage on its own: predicted chroma on the true luminance, scored with the competition metric."""
    rows = _color_scores(stage.net, val_ds, stage.size, [stage.chroma_gain], batch_size)[stage.chroma_gain]
    return {f"val_{k}": float(np.mean([r[k] for r in rows])) for k in ("hue", "score", "ssim", "masked_ssim")}


def calibrate_chroma_gain(net, val_ds, size: int, gains=(1.0, 1.5, 2.0, 2.5, 3.0, 4.0)):
    """Score each chroma gain on the validation set; -> (best gain by score, per-gain table). The hue
    histogram ignores saturation, but weak chroma rounds to exact gray (hue 0) in uint8 RGB."""
    import pandas as pd

    rows = _color_scores(net, val_ds, size, gains)
    table = pd.DataFrame({g: {k: float(np.mean([r[k] for r in rs])) for k in ("score", "hue", "ssim", "masked_ssim")}
                          for g, rs in rows.items()}).T.rename_axis("chroma_gain")
    return float(table["score"].idxmax()), table


# ---------------------------------------------------------------- stage 3
class InpaintDataset(Dataset):
    """Wraps a SyntheticDamageDataset: the input is the true colour image with its hole pre-filled by
    Telea (as the pipeline does), the target the true image; `gray_share` of items are gray copies."""

    def __init__(self, base, size: int = 256, gray_share: float = 0.0):
        self.base, self.size, self.gray_share = base, size, gray_share

    def __len__(self):
        return len(self.base)

    def set_epoch(self, e):
        self.base.set_epoch(e)

    def __getitem__(self, idx):
        s = self.base.sample(idx)
        rgb = s["rgb"]
        if self.gray_share and np.random.default_rng([idx, self.base.epoch, 7]).random() < self.gray_share:
            rgb = np.repeat(s["clean_gray"][..., None], 3, -1)
        item = to_tensor_sample(s["gray"], s["mask"], rgb, self.size)
        pre = to_tensor_sample(s["gray"], s["mask"], telea(rgb, s["mask"]), self.size)
        return {"image": pre["rgb"], "mask": item["mask"], "rgb": item["rgb"]}


class InpaintStage(Stage):
    name = "inpaint"

    def __init__(self, lr: float = 5e-4, d_lr: float = 2e-4, device="cpu", amp: bool | None = None, size: int = 256,
                 hole_weight: float = 6.0, ssim_weight: float = 0.0, gan_weight: float = 0.01, **model_kwargs):
        super().__init__(device, amp, size)
        g = _prepare(InpaintNet(**model_kwargs), self.device)
        d = _prepare(PatchDiscriminator(), self.device)
        self.nets = {"inpaint": (g, model_config("InpaintNet", **model_kwargs)),
                     "inpaint_disc": (d, model_config("PatchDiscriminator"))}
        self.loss = InpaintLoss(hole_weight=hole_weight, ssim_weight=ssim_weight, gan_weight=gan_weight)
        self.opts = {"g": torch.optim.AdamW(g.parameters(), lr=lr, betas=(0.5, 0.999)),
                     "d": torch.optim.AdamW(d.parameters(), lr=d_lr, betas=(0.5, 0.999))}

    def train_step(self, batch):
        if not self.batch_is_finite(batch):
            return None
        g, d = self.nets["inpaint"][0], self.nets["inpaint_disc"][0]
        x, m, y = _cl(batch["image"], self.device), _cl(batch["mask"], self.device), _cl(batch["rgb"], self.device)
        logs = {}
        with autocast(self.device, self.amp):
            out = g(x, m)
        if self.loss.gan_w > 0:
            with autocast(self.device, self.amp):
                d_loss = discriminator_hinge_loss(d(y, m), d(out.detach(), m))
            if not self._step(self.opts["d"], d_loss, d.parameters()):
                return None
            logs["d_loss"] = float(d_loss.detach())
        with autocast(self.device, self.amp):
            fake = d(out, m) if self.loss.gan_w > 0 else None
            parts = self.loss(out, y, m, fake)
        if not self._step(self.opts["g"], parts["loss"], g.parameters()):
            return None
        logs.update({("g_loss" if k == "loss" else k): float(v.detach()) for k, v in parts.items()})
        logs["loss"] = logs["g_loss"]
        return logs


def validate_inpaint(stage: InpaintStage, val_ds, batch_size: int = 8) -> dict:
    """Masked SSIM and score of the fill vs OpenCV Telea on the same holes (true colours around)."""
    ours, ref = [], []
    for start in range(0, len(val_ds), batch_size):
        samples = [val_ds.sample(i) for i in range(start, min(start + batch_size, len(val_ds)))]
        outs = inpaint(stage.net, [s["rgb"] for s in samples], [s["mask"] for s in samples], stage.size)
        for s, o in zip(samples, outs):
            ours.append(score_image(s["rgb"], o, s["mask"]))
            ref.append(score_image(s["rgb"], telea(s["rgb"], s["mask"]), s["mask"]))
    return {"val_masked_ssim": float(np.mean([r["masked_ssim"] for r in ours])),
            "val_score": float(np.mean([r["score"] for r in ours])),
            "val_masked_ssim_telea": float(np.mean([r["masked_ssim"] for r in ref])),
            "val_score_telea": float(np.mean([r["score"] for r in ref]))}


__all__ = ["calibrate_chroma_gain", "ColorStage", "InpaintDataset", "InpaintStage", "MaskStage", "Stage",
           "validate_color", "validate_inpaint", "validate_mask"]
