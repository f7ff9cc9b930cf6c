"""The three training stages: model + loss + optimizer + a NaN-guarded step + checkpointing (driven by
`utils.training.fit`; each stage's validation is in utils.evaluation). Each is built from its config
(utils.train_config): `MaskStage(MaskConfig(...), device)`, or `MaskStage(device=..., lr=...)` with fields."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoints import load_model, save_model
from .losses import ColorLoss, InpaintLoss, MaskLoss, choose_loss, discriminator_hinge_loss
from .mask_refine import RefineConfig
from .models import ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, model_config
from .paths import project_path
from .runtime import autocast, default_amp, is_finite
from .train_config import ColorConfig, InpaintConfig, MaskConfig, StageConfig, config_class


class Stage:
    """Shared machinery; subclasses set `name`, `nets` {stem: (module, config)}, `opts` and `train_step`.
    `config` is the stage's config (utils.train_config) with 'auto' resolved to the loss it trains and
    init_weights as an absolute path; `utils.fit` writes it beside every checkpoint."""

    name = "stage"

    def __init__(self, config: StageConfig | None, device, fields: dict):
        cls = config_class(self.name)
        config = (config or cls()).replace(**fields)
        if type(config) is not cls:
            raise TypeError(f"{type(self).__name__} takes a {cls.__name__}, got a {type(config).__name__}")
        self.config = config.replace(loss=choose_loss(self.name, config.loss))
        self.device, self.size = torch.device(device), config.image_size
        amp = {"auto": None, "off": False}.get(config.amp, True)     # bf16: autocast on (utils.runtime)
        self.amp = default_amp(self.device) if amp is None else amp
        self.nets: dict = {}
        self.opts: dict = {}

    def _init_weights(self) -> None:
        """The config's init_weights (relative: from the repository root), loaded once the nets exist."""
        if self.config.init_weights:
            self.init_from(project_path(self.config.init_weights))

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
        self.config = self.config.replace(init_weights=str(weights_dir))

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
        """Each net's `<stem>.safetensors` and `<stem>.json` (its architecture, the inference settings and the
        stage's config, `train_config`)."""
        for stem, (m, cfg) in self.nets.items():
            save_model(m, {**cfg, "stage": self.name, "inference": self.inference_config(),
                           "train_config": self.config.to_dict(), **extra}, Path(ckpt_dir) / stem)

    def state(self) -> dict:
        return {"optimizers": {k: o.state_dict() for k, o in self.opts.items()}}

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

    def __init__(self, config: MaskConfig | None = None, device="cpu", **fields):
        super().__init__(config, device, fields)
        c = self.config
        self.refine = RefineConfig()        # the mask's post-process, stored with the checkpoint for inference
        model_kwargs = {"encoder": c.encoder, "pretrained": c.pretrained}
        net = _prepare(MaskNet(**model_kwargs), self.device)
        self.nets = {"mask": (net, model_config("MaskNet", **model_kwargs))}
        self.loss = MaskLoss(c.loss).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=1e-4)}
        self._init_weights()

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

    def __init__(self, config: ColorConfig | None = None, device="cpu", **fields):
        super().__init__(config, device, fields)
        c = self.config
        head = "classes" if c.loss.startswith("classify") else "regression"      # the loss decides the head
        model_kwargs = {"encoder": c.encoder, "pretrained": c.pretrained, "head": head}
        net = _prepare(ColorizationNet(**model_kwargs), self.device)
        self.nets = {"color": (net, model_config("ColorizationNet", **model_kwargs))}
        self.loss = ColorLoss(c.loss, bin_centers=net.bin_centers if head == "classes" else None,
                              rebalance_lambda=c.rebalance_lambda).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=1e-4)}
        self._init_weights()

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

    def __init__(self, config: InpaintConfig | None = None, device="cpu", **fields):
        super().__init__(config, device, fields)
        c = self.config
        model_kwargs = {"block": c.block, "encoder": c.encoder, "pretrained": c.pretrained}
        g = _prepare(InpaintNet(**model_kwargs), self.device)
        self.nets = {"inpaint": (g, model_config("InpaintNet", **model_kwargs))}
        self.loss = InpaintLoss(c.loss, hole_weight=c.hole_weight, ssim_weight=c.ssim_weight, gan_weight=c.gan_weight)
        # Adam's usual momentum without a discriminator; the GAN's (0.5) with one
        betas = (0.5, 0.999) if self.loss.gan_w else (0.9, 0.999)
        self.opts = {"g": torch.optim.AdamW(g.parameters(), lr=c.lr, betas=betas)}
        if self.loss.gan_w > 0:
            d = _prepare(PatchDiscriminator(), self.device)
            self.nets["inpaint_disc"] = (d, model_config("PatchDiscriminator"))
            self.opts["d"] = torch.optim.AdamW(d.parameters(), lr=c.d_lr, betas=(0.5, 0.999))
        self._init_weights()

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


STAGE_CLASSES = {"mask": MaskStage, "color": ColorStage, "inpaint": InpaintStage}


def make_stage(config: StageConfig, device="cpu") -> Stage:
    """The stage that `config` configures (a MaskConfig builds a MaskStage, ...), on `device`."""
    return STAGE_CLASSES[config.stage](config, device)


__all__ = ["ColorStage", "InpaintStage", "MaskStage", "STAGE_CLASSES", "Stage", "make_stage"]
