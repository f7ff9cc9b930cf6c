"""The three training stages: model + loss + optimizer + a NaN-guarded step + checkpointing (driven by
`utils.loop.fit`; each stage's validation is in utils.evaluation). Each is built from its config
(utils.train_config): `MaskStage(MaskConfig(...), device)`, or `MaskStage(device=..., lr=...)` with fields.

A training step runs in the stage's precision (`amp`, utils.runtime.choose_precision: bf16 or fp16 autocast, or
fp32); in fp16 a gradient scaler (torch.amp.GradScaler) scales the loss, and a step whose gradients overflow is
skipped by the scaler, which lowers its scale (its state is part of the checkpoint's train state). A batch that runs
out of GPU memory is split: the stage retries it in passes of half as many images, their gradients accumulated into
the one optimizer step of the whole batch, and keeps that pass size for the rest of the run (`micro_batch`).
"""
from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import torch

from ..core.checkpoints import load_model, save_model
from ..core.models import ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, model_config
from ..core.paths import project_path
from ..core.runtime import autocast, check_amp, choose_precision, grad_scaler, is_finite
from ..core.train_config import ColorConfig, InpaintConfig, MaskConfig, StageConfig, config_class
from ..inference.mask_refine import RefineConfig
from .losses import ColorLoss, InpaintLoss, MaskLoss, choose_loss, discriminator_hinge_loss


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
        self.nets: dict = {}
        self.opts: dict = {}
        self.micro_batch: int | None = None     # images per forward/backward pass; None: the whole batch
        self.overflow_steps = 0                 # fp16 steps that the gradient scaler skipped (overflowing gradients)
        self.set_precision(config.amp)

    def set_precision(self, amp: str | None = "auto") -> None:
        """`amp` (utils.configs.AMP_MODES) -> `precision` ('bf16', 'fp16' or 'off') on this stage's device, and the
        gradient scaler (active for fp16 only)."""
        self.amp = check_amp(amp)
        self.precision = choose_precision(self.device, self.amp)
        self.scaler = grad_scaler(self.device, self.precision)

    def schedule_lr(self, epoch: int, epochs: int) -> float:
        """Set every optimizer's learning rate for `epoch` (0-based) of `epochs` by the config's lr_schedule
        (constant, or cosine: lr x (1 + cos(pi epoch / epochs)) / 2); returns the factor of the configured rates."""
        factor = 1.0
        if self.config.lr_schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        return factor

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
                raise ValueError(
                    f"{weights_dir / stem}.safetensors: its net ({loaded_cfg.get('arch')} "
                    f"{loaded_cfg.get('kwargs')}) is not this stage's ({cfg.get('arch')} {cfg.get('kwargs')}); "
                    "choose the loss (head) and encoder the weights were trained with"
                )
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

    @staticmethod
    def agree(flag: bool) -> bool:
        """A step's decision to go on (its losses are finite), as every process takes it: this process's own here;
        utils.ranks.prepare_stage makes it all ranks' under DDP, so that no rank enters a backward pass (a
        collective) that another skips."""
        return flag

    def train_step(self, batch):
        """One optimizer step per optimizer on `batch` (a collated dict); the mean losses, or None when the NaN
        guard skipped it (a non-finite input or loss)."""
        if not self.batch_is_finite(batch):
            return None
        self._stepped = False
        try:
            return self._train_step(batch)
        finally:
            if self._stepped and self.scaler.is_enabled():  # once per step, after all its optimizers
                scale = self.scaler.get_scale()
                self.scaler.update()
                self.overflow_steps += self.scaler.get_scale() < scale  # lowered: the gradients overflowed

    def _train_step(self, batch):
        raise NotImplementedError

    def _chunks(self, batch: dict) -> list[tuple[dict, float]]:
        """The batch in passes of at most `micro_batch` images, each with its share of the batch's images."""
        n = _batch_len(batch)
        k = min(self.micro_batch or n, n)
        return [({key: v[i : i + k] for key, v in batch.items()}, min(k, n - i) / n) for i in range(0, n, k)]

    def _optimise(self, opt_name: str, modules, batch: dict, losses) -> dict | None:
        """One step of `self.opts[opt_name]` on `batch`: `losses(chunk, whole)` gives the losses ({"loss": ...,
        other parts}) of each pass (`whole`: the pass is the whole batch); each pass's loss, weighted by its share of
        the images, goes backward (scaled in fp16), the summed gradients are clipped and the optimizer steps once.
        Returns the batch's mean losses (as floats), or None with nothing stepped when a loss is not finite.

        Out of GPU memory: the pass size (`micro_batch`) is halved, with one message naming it, and the step is
        redone; the passes' weighted losses add up to the whole batch's mean loss, so the step is the whole
        batch's (BatchNorm statistics and batch-level terms such as the Dice overlap are computed per pass). Under
        DDP the passes before the last skip the gradient averaging (`no_sync`); a rank that runs out of memory
        inside the last pass's averaging cannot redo the step in step with the other ranks."""
        opt = self.opts[opt_name]
        modules = modules if isinstance(modules, (list, tuple)) else [modules]
        n = _batch_len(batch)
        while True:
            try:
                return self._accumulate(opt, modules, batch, losses)
            except torch.cuda.OutOfMemoryError:
                size = min(self.micro_batch or n, n)
                if size <= 1:
                    raise
            # out of the except clause, the failed pass's tensors (held by its traceback) are free again
            opt.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.micro_batch = (size + 1) // 2
            warnings.warn(
                f"{self.name}: out of GPU memory with {size} images per pass; training on in passes of "
                f"{self.micro_batch} images, {math.ceil(n / self.micro_batch)} passes accumulated into "
                f"each step of {n} images (same effective batch)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _accumulate(self, opt, modules, batch, losses) -> dict | None:
        opt.zero_grad(set_to_none=True)
        chunks = self._chunks(batch)
        sums, finite = {}, True
        for i, (chunk, share) in enumerate(chunks):
            last = i == len(chunks) - 1
            with contextlib.ExitStack() as stack:
                if not last:  # DDP: the gradients are averaged across ranks once, in the last pass's backward
                    for m, _ in self.nets.values():
                        if hasattr(m, "no_sync"):
                            stack.enter_context(m.no_sync())
                parts = losses(chunk, len(chunks) == 1) if finite else None
                finite = finite and is_finite(parts["loss"])
                if last:
                    finite = self.agree(finite)
                if finite:
                    self.scaler.scale(parts["loss"] * share if share != 1 else parts["loss"]).backward()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + float(v.detach()) * share
        if not finite:
            opt.zero_grad(set_to_none=True)
            return None
        self.scaler.unscale_(opt)  # (a no-op unless fp16) so that clipping sees the true gradients
        torch.nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], 5.0)
        self.scaler.step(opt)  # in fp16 skipped when the gradients overflowed (the scale then drops)
        self._stepped = True
        return sums

    def save(self, ckpt_dir, extra: dict):
        """Each net's `<stem>.safetensors` and `<stem>.json` (its architecture, the inference settings and the
        stage's config, `train_config`)."""
        for stem, (m, cfg) in self.nets.items():
            save_model(
                m,
                {
                    **cfg,
                    "stage": self.name,
                    "inference": self.inference_config(),
                    "train_config": self.config.to_dict(),
                    **extra,
                },
                Path(ckpt_dir) / stem,
            )

    def state(self) -> dict:
        out = {"optimizers": {k: o.state_dict() for k, o in self.opts.items()}}
        if self.scaler.is_enabled():  # fp16: the gradient scale and its growth tracker, for an exact resume
            out["scaler"] = self.scaler.state_dict()
        return out

    def load_state(self, state: dict, ckpt_dir):
        for stem, (m, _) in self.nets.items():
            loaded, _ = load_model(Path(ckpt_dir) / stem, "cpu")
            m.load_state_dict(loaded.state_dict())
        for k, o in self.opts.items():
            o.load_state_dict(state["optimizers"][k])
        if self.scaler.is_enabled() and state.get("scaler"):  # (a run trained in another precision has none)
            self.scaler.load_state_dict(state["scaler"])


def _prepare(net, device):
    return net.to(device).to(memory_format=torch.channels_last)


def _to(x, device):
    return x.to(device, non_blocking=True)  # from the loader's pinned memory on CUDA: overlaps the copy


def _cl(x, device):
    return _to(x, device).contiguous(memory_format=torch.channels_last)


def _batch_len(batch: dict) -> int:
    return len(next(iter(batch.values())))


# ---------------------------------------------------------------- stage 1
class MaskStage(Stage):
    name = "mask"

    def __init__(self, config: MaskConfig | None = None, device="cpu", **fields):
        super().__init__(config, device, fields)
        c = self.config
        self.refine = RefineConfig()  # the mask's post-process, stored with the checkpoint for inference
        model_kwargs = {"encoder": c.encoder, "pretrained": c.pretrained}
        net = _prepare(MaskNet(**model_kwargs), self.device)
        self.nets = {"mask": (net, model_config("MaskNet", **model_kwargs))}
        self.loss = MaskLoss(c.loss).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=1e-4)}
        self._init_weights()

    def inference_config(self):
        return {"size": self.size, "refine": self.refine.to_dict()}

    def _train_step(self, batch):
        def losses(chunk, whole):
            x, y = _cl(chunk["gray"], self.device), _to(chunk["mask"], self.device)
            with autocast(self.device, self.precision):
                return self.loss(self.net(x), y)

        return self._optimise("opt", self.net, batch, losses)


# ---------------------------------------------------------------- stage 2
class ColorStage(Stage):
    name = "color"

    def __init__(self, config: ColorConfig | None = None, device="cpu", **fields):
        super().__init__(config, device, fields)
        c = self.config
        head = "classes" if c.loss.startswith("classify") else "regression"  # the loss decides the head
        model_kwargs = {"encoder": c.encoder, "pretrained": c.pretrained, "head": head}
        net = _prepare(ColorizationNet(**model_kwargs), self.device)
        self.nets = {"color": (net, model_config("ColorizationNet", **model_kwargs))}
        self.loss = ColorLoss(
            c.loss, bin_centers=net.bin_centers if head == "classes" else None, rebalance_lambda=c.rebalance_lambda
        ).to(self.device)
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=1e-4)}
        self._init_weights()

    def _train_step(self, batch):
        def losses(chunk, whole):
            g, m, rgb = _cl(chunk["gray"], self.device), _cl(chunk["mask"], self.device), _to(chunk["rgb"], self.device)
            luma = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]  # the true luminance
            with autocast(self.device, self.precision):
                cbcr, logits = self.net(g, m, return_logits=True)
                return self.loss(cbcr, rgb, luma, logits)

        return self._optimise("opt", self.net, batch, losses)


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
        # fully convolutional: the pipeline runs it at the image's own resolution, over the pre-fill it trained on
        return {"size": "full", "prefill": self.config.prefill}

    def _train_step(self, batch):
        g = self.nets["inpaint"][0]
        d = self.nets["inpaint_disc"][0] if self.loss.gan_w > 0 else None
        kept = {}  # the generator's output of a one-pass discriminator step, for the generator's step

        def inputs(chunk):
            return (
                _cl(chunk["image"], self.device),
                _cl(chunk["mask"], self.device),
                _cl(chunk["target"], self.device),
            )

        def d_losses(chunk, whole):
            kept.pop("out", None)  # (one of a pass that ran out of memory)
            x, m, y = inputs(chunk)
            with autocast(self.device, self.precision):
                if whole:
                    out = kept["out"] = g(x, m)
                else:  # passes: the generator's step runs it again, with gradients
                    with torch.no_grad():
                        out = g(x, m)
                return {"loss": discriminator_hinge_loss(d(y, m), d(out.detach(), m))}

        def g_losses(chunk, whole):
            x, m, y = inputs(chunk)
            out = kept.pop("out", None)
            out = out if whole else None
            with autocast(self.device, self.precision):
                if out is None:
                    out = g(x, m)
                fake = d(out, m) if d is not None else None
            return self.loss(out, y, m, fake)

        logs = {}
        if d is not None:
            d_parts = self._optimise("d", d, batch, d_losses)
            if d_parts is None:
                return None
            logs["d_loss"] = d_parts["loss"]
        parts = self._optimise("g", g, batch, g_losses)
        if parts is None:
            return None
        logs.update({("g_loss" if k == "loss" else k): v for k, v in parts.items()})
        logs["loss"] = logs["g_loss"]
        return logs


STAGE_CLASSES = {"mask": MaskStage, "color": ColorStage, "inpaint": InpaintStage}


def make_stage(config: StageConfig, device="cpu") -> Stage:
    """The stage that `config` configures (a MaskConfig builds a MaskStage, ...), on `device`."""
    return STAGE_CLASSES[config.stage](config, device)


__all__ = ["ColorStage", "InpaintStage", "MaskStage", "STAGE_CLASSES", "Stage", "make_stage"]
