"""The three training stages: model + loss + optimizer + a NaN-guarded step + checkpointing (driven by
`utils.training.fit`; each stage's validation is in utils.evaluation)."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoints import load_model, save_model
from .losses import ColorLoss, InpaintLoss, MaskLoss, discriminator_hinge_loss
from .mask_refine import RefineConfig
from .models import ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, model_config
from .runtime import autocast, default_amp, is_finite


class Stage:
    """Shared machinery; subclasses set `name`, `nets` {stem: (module, config)}, `opts` and `train_step`."""

    name = "stage"

    def __init__(self, device, amp: bool | None, size: int):
        self.device, self.size = torch.device(device), size
        self.amp = default_amp(self.device) if amp is None else amp
        self.nets: dict = {}
        self.opts: dict = {}
        self.init_weights: str | None = None

    def init_from(self, weights_dir) -> None:
        """Start from trained weights instead of ImageNet: each of this stage's nets loads `<stem>.safetensors` of
        weights_dir (e.g. the shipped weights/, to fine-tune them on your photos). The nets' configs must match
        (same architecture, encoder and head); a mismatch or a missing file is an error naming the file."""
        weights_dir = Path(weights_dir)
        for stem, (m, cfg) in self.nets.items():
            if not (weights_dir / f"{stem}.json").is_file() and stem.endswith("_disc"):
                continue                # a discriminator that was not exported starts afresh
            loaded, loaded_cfg = load_model(weights_dir / stem, "cpu")
            theirs = {k: tuple(v.shape) for k, v in loaded.state_dict().items()}
            ours = {k: tuple(v.shape) for k, v in m.state_dict().items()}
            if type(loaded) is not type(m) or theirs != ours:
                raise ValueError(f"{weights_dir / stem}.safetensors: its net ({loaded_cfg.get('arch')} "
                                 f"{loaded_cfg.get('kwargs')}) is not this stage's ({cfg.get('arch')} {cfg.get('kwargs')}); "
                                 "choose the loss (head) and encoder the weights were trained with")
            m.load_state_dict(loaded.state_dict())
        self.init_weights = str(weights_dir)

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
        and its weights, each optimizer's learning rates, the networks' configs, the working size and the
        weights it started from (`init_weights`, stored only when set). `fit` adds the batch size, the seed and
        the training data (`utils.training.data_settings`: train_source and the data folder)."""
        loss = getattr(self, "loss", None)
        loss_desc = {k: v for k, v in vars(loss).items() if isinstance(v, (str, int, float, bool))} if loss is not None else None
        return {"loss": loss_desc,
                "lr": {k: [g.get("initial_lr", g["lr"]) for g in o.param_groups] for k, o in self.opts.items()},
                "nets": {stem: {k: v for k, v in cfg.items() if k != "inference"} for stem, (_, cfg) in self.nets.items()},
                "size": self.size, **({"init_weights": self.init_weights} if self.init_weights else {})}

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


# ---------------------------------------------------------------- stage 2
class ColorStage(Stage):
    name = "color"

    def __init__(self, loss: str = "classify", lr: float = 5e-4, device="cpu", amp: bool | None = None,
                 size: int = 256, rebalance_lambda: float = 0.5, **model_kwargs):
        super().__init__(device, amp, size)
        if loss.startswith("classify"):
            model_kwargs.setdefault("head", "classes")
        net = _prepare(ColorizationNet(**model_kwargs), self.device)
        self.nets = {"color": (net, model_config("ColorizationNet", **model_kwargs))}
        self.chroma_gain = 1.0
        self.loss = ColorLoss(loss, bin_centers=net.bin_centers if net.head == "classes" else None,
                              rebalance_lambda=rebalance_lambda).to(self.device)
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


# ---------------------------------------------------------------- stage 3
class InpaintStage(Stage):
    """Stage 3 on luminance: the InpaintNet (block 'ffc' by default) trained on hole windows of full-resolution
    gray images (utils.datasets.InpaintDataset), with the loss by name (utils.losses.InpaintLoss; the design's
    L1 + GAN stays available, the default is the one measured best on held-out masked SSIM)."""
    name = "inpaint"

    def __init__(self, loss: str = "l1+mssim", lr: float = 1e-3, d_lr: float = 2e-4, device="cpu", amp: bool | None = None,
                 size: int = 256, hole_weight: float = 6.0, ssim_weight: float = 1.0, gan_weight: float = 0.01,
                 **model_kwargs):
        super().__init__(device, amp, size)
        g = _prepare(InpaintNet(**model_kwargs), self.device)
        self.nets = {"inpaint": (g, model_config("InpaintNet", **model_kwargs))}
        self.loss = InpaintLoss(loss, hole_weight=hole_weight, ssim_weight=ssim_weight, gan_weight=gan_weight)
        # Adam's usual momentum without a discriminator; the GAN's (0.5) with one
        self.opts = {"g": torch.optim.AdamW(g.parameters(), lr=lr, betas=(0.5, 0.999) if self.loss.gan_w else (0.9, 0.999))}
        if self.loss.gan_w > 0:
            d = _prepare(PatchDiscriminator(), self.device)
            self.nets["inpaint_disc"] = (d, model_config("PatchDiscriminator"))
            self.opts["d"] = torch.optim.AdamW(d.parameters(), lr=d_lr, betas=(0.5, 0.999))

    def inference_config(self) -> dict:
        return {"size": "full"}     # fully convolutional: the pipeline runs it at the image's own resolution

    def train_step(self, batch):
        if not self.batch_is_finite(batch):
            return None
        g = self.nets["inpaint"][0]
        x, m, y = _cl(batch["image"], self.device), _cl(batch["mask"], self.device), _cl(batch["target"], self.device)
        logs = {}
        with autocast(self.device, self.amp):
            out = g(x, m)
        fake = None
        if self.loss.gan_w > 0:
            d = self.nets["inpaint_disc"][0]
            with autocast(self.device, self.amp):
                d_loss = discriminator_hinge_loss(d(y, m), d(out.detach(), m))
            if not self._step(self.opts["d"], d_loss, d.parameters()):
                return None
            logs["d_loss"] = float(d_loss.detach())
            with autocast(self.device, self.amp):
                fake = d(out, m)
        parts = self.loss(out, y, m, fake)
        if not self._step(self.opts["g"], parts["loss"], g.parameters()):
            return None
        logs.update({("g_loss" if k == "loss" else k): float(v.detach()) for k, v in parts.items()})
        logs["loss"] = logs["g_loss"]
        return logs


__all__ = ["ColorStage", "InpaintStage", "MaskStage", "Stage"]
