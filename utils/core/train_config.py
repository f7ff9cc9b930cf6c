"""Every setting of a training stage in one typed config: `MaskConfig`, `ColorConfig`, `InpaintConfig`.

A config is a frozen dataclass of flat fields; each field's metadata names its group and says what it does:

    data                    what the stage trains on (train_source, photos, crop_scale, repeats, ...)
    model                   the network (image_size, encoder, pretrained, init_weights; inpaint: block)
    loss                    the loss by name and its weights
    optimiser and schedule  learning rates, batch size, epochs, steps per epoch, seed
    precision               autocast (amp)
    comparison              the training notebooks' equal-budget loss comparison (tools/train.py trains the loss
                            it is given and has no flags for these)

Flat fields, so that one name means one setting everywhere: a notebook's `settings = {"epochs": 10}`,
`tools/run_notebooks.py -p epochs=10`, `tools/train.py --epochs 10` and `MaskConfig(epochs=10)`. The defaults are
the measured ones, written here once: the stages, their losses (utils.losses) and the command line take them from
these classes. Named presets change a few fields: "default" (none: the measured settings), "sample" (short runs
that show each stage learning on the sample dataset) and "smoke" (tiny runs for the tests); `MaskConfig.preset(
"smoke", epochs=2)` applies settings on top of a preset.

A config is saved with every checkpoint (`train_config` in each `<stem>.json`, and in the train state), and the
check of a resumed run compares it field by field (`changed_fields`): fields marked `compared=False` (epochs,
steps_per_epoch, repeats, num_workers, val_count, photos, amp and the comparison's) may change between the runs.
This module imports nothing heavy (no torch): the command line's --help and the notebook runner read it.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import html
import types
import typing
from dataclasses import dataclass, field
from typing import ClassVar

from .configs import AMP_MODES, PREFILLS, known_fields

DATA, MODEL, LOSS, OPTIMISER, PRECISION, COMPARISON = (
    "data", "model", "loss", "optimiser and schedule", "precision", "comparison")
GROUPS = (DATA, MODEL, LOSS, OPTIMISER, PRECISION, COMPARISON)

TRAIN_SOURCES = ("synthetic", "provided", "both", "photos")
PRETRAINED = ("auto", "offline", "online", "none")
INPAINT_BLOCKS = ("ffc", "gated", "unet")
MASK_LOSSES = ("l2+perceptual", "bce", "dice", "bce+dice")
COLOR_LOSSES = ("perceptual", "perceptual+l1", "l1", "perceptual+l1+hue", "classify", "classify+perceptual",
                "classify+hist")
INPAINT_LOSSES = ("l1+gan", "l1+mssim", "l1+mssim+perceptual", "l1+mssim+gan")

PRESET_HELP = {
    "default": "the measured settings (full training)",
    "sample": "short runs that show each stage learning on the sample dataset: 2 epochs of 6 steps, each photo "
              "damaged anew 3 times an epoch, no loss comparison, 8 validation images",
    "smoke": "tiny runs for the tests and a quick look: 1 epoch of 2 steps at batch 2 and 128 px, a one-step "
             "comparison of the design's loss with the default",
}
_PRESETS = {
    "default": {},
    "sample": {"epochs": 2, "steps_per_epoch": 6, "repeats": 3, "compare_losses": False, "val_count": 8},
    "smoke": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "image_size": 128, "compare_steps": 1,
              "val_count": 3, "num_workers": 0},
}


LR_SCHEDULES = ("constant", "cosine")


class ConfigError(ValueError):
    """A config field that does not exist, or a value of the wrong type or outside its choices."""


def setting(default, group: str, help: str, *, choices: tuple | None = None, compared: bool = True,
            path: bool = False, minimum: int | None = None):
    """A config field: its default, group and help; `choices` (of the value, or of each item of a tuple),
    `compared` (whether a resumed run must keep it), `path` (a file or folder: a relative one is taken from the
    repository root; the command lines take it from the working directory) and `minimum` (of an int)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; one of {GROUPS}")
    return field(default=default, metadata={"group": group, "help": help, "choices": choices,
                                            "compared": compared and group != COMPARISON, "path": path,
                                            "minimum": minimum})


def _names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_names(cls, names) -> None:
    unknown = [n for n in names if n not in _names(cls)]
    if not unknown:
        return
    hints = []
    for n in unknown:
        close = difflib.get_close_matches(n, _names(cls), n=1)
        elsewhere = [c.stage for c in CONFIGS.values() if c is not cls and n in _names(c)]
        hints.append(n + (f" (did you mean {close[0]}?)" if close else "")
                     + (f" (a field of the {'/'.join(elsewhere)} stage)" if elsewhere else ""))
    raise ConfigError(f"{cls.__name__}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                      f"its fields: {', '.join(sorted(_names(cls)))}")


def _coerce(owner: str, name: str, hint, value):
    """`value` as the field's type: an int is a float where a float is wanted, a list a tuple; else an error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(owner, name, inner[0], value)
    ok = {bool: lambda v: isinstance(v, bool), str: lambda v: isinstance(v, str),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{owner}.{name}: expected a sequence, got {value!r} ({type(value).__name__})")
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise ConfigError(f"{owner}.{name}: expected {len(items)} values, got {len(value)} ({value!r})")
        return tuple(_coerce(owner, name, t, v) for t, v in zip(items, value, strict=True))
    if hint in ok:
        if not ok[hint](value):
            raise ConfigError(f"{owner}.{name}: expected {hint.__name__}, got {value!r} ({type(value).__name__})")
        return float(value) if hint is float else value
    raise TypeError(f"{owner}.{name}: unsupported field type {hint!r}")


class StageConfig:
    """The fields every stage shares; see the module's docstring. Build one with `Config(...)`,
    `Config.preset(name, **settings)` or `config.replace(**settings)`; an unknown field is an error naming the
    known ones."""

    stage: ClassVar[str] = ""
    design_loss: ClassVar[str] = ""        # the project design's loss: the smoke preset compares it with the default

    # data
    train_source: str = setting("synthetic", DATA, "synthetic: damage drawn afresh on train_gt; provided: the "
                                "train_input/train_gt pairs; both; photos: a fresh random crop of each full-resolution "
                                "photo every epoch", choices=TRAIN_SOURCES)
    photos: str | None = setting(None, DATA, "train_source photos: a folder of colour photos or a .txt file listing "
                                 "them; None: the photos that the data dir's manifest.csv names, less those with "
                                 "validation crops", compared=False, path=True)
    crop_scale: tuple[float, float] = setting((1.0, 3.0), DATA, "train_source photos: the crop's short side is 512 x "
                                              "s, s drawn in this range, at most the photo's own size")
    stroke_share: float = setting(0.0, DATA, "share of the synthetic damage that is free-form strokes (scratches, "
                                  "brush marks; utils.damage.DamageConfig) instead of the competition's polygons "
                                  "(0: none)")
    repeats: int = setting(1, DATA, "each photo appears this many times an epoch, damaged anew", compared=False,
                           minimum=1)
    max_train: int | None = setting(None, DATA, "train on the first N photos of the train split only; None: all")
    val_count: int | None = setting(48, DATA, "validation images (fixed damage); None: the whole validation split",
                                    compared=False, minimum=1)
    num_workers: int | None = setting(None, DATA, "data-loader worker processes (per training process); None: from "
                                      "the core count (CUDA: the cores per process, at most 8; CPU: 1)",
                                      compared=False, minimum=0)
    # model
    image_size: int = setting(256, MODEL, "the network's working resolution in training (a multiple of 32)",
                              minimum=32)
    encoder: str = setting("tf_efficientnet_lite0", MODEL, "the timm encoder (tf_efficientnet_lite0/1/2 have "
                           "offline ImageNet weights)")
    pretrained: str = setting("auto", MODEL, "the encoder's ImageNet weights: offline (packaged Lite0/1/2), online "
                              "(timm hub), auto (offline, else online) or none", choices=PRETRAINED)
    init_weights: str | None = setting(None, MODEL, "start from the trained nets in this folder (e.g. weights, to "
                                       "fine-tune the shipped ones) instead of ImageNet; None: ImageNet", path=True)
    # optimiser and schedule
    lr: float = setting(1e-3, OPTIMISER, "learning rate (AdamW)")
    batch_size: int = setting(8, OPTIMISER, "images per step (per training process)", minimum=1)
    epochs: int = setting(6, OPTIMISER, "epochs to train (a resumed run trains the missing ones)", compared=False,
                          minimum=0)
    steps_per_epoch: int | None = setting(None, OPTIMISER, "steps per epoch (per process); None: the whole train "
                                          "split times repeats", compared=False, minimum=1)
    seed: int = setting(0, OPTIMISER, "data split, damage and initialisation seed")
    lr_schedule: str = setting("constant", OPTIMISER, "the learning rate over the epochs: constant, or cosine (from lr "
                               "at the first epoch down towards 0 at the last, set at the start of each epoch)",
                               choices=LR_SCHEDULES)
    # precision
    amp: str = setting("auto", PRECISION, "precision: auto (bf16 on CUDA compute capability >= 8.0, fp16 with a "
                       "gradient scaler on 7.x, fp32 on older cards and the CPU), bf16, fp16 or off (fp32)",
                       choices=AMP_MODES, compared=False)
    # comparison
    compare_losses: bool = setting(True, COMPARISON, "train every loss of compare_options for compare_steps first "
                                   "and show how each validates (skipped with several training processes)")
    compare_options: tuple[str, ...] | None = setting(None, COMPARISON, "the losses compared; None: every loss of "
                                                      "the stage")
    compare_steps: int = setting(100, COMPARISON, "steps of each comparison run", minimum=1)

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(type(self).__name__, f.name, hints[f.name], getattr(self, f.name))
            choices, minimum = f.metadata["choices"], f.metadata["minimum"]
            for v in value if isinstance(value, tuple) else (value,):
                if choices is not None and v is not None and v not in choices:
                    raise ConfigError(f"{type(self).__name__}.{f.name}: {v!r} is not one of {', '.join(choices)}")
                if minimum is not None and isinstance(v, int) and v < minimum:
                    raise ConfigError(f"{type(self).__name__}.{f.name}: {v} is below its minimum, {minimum}")
            object.__setattr__(self, f.name, value)
        losses = STAGE_LOSSES.get(self.stage, ())
        for option in self.compare_options or ():
            if option not in losses:
                raise ConfigError(f"{type(self).__name__}.compare_options: {option!r} is not one of "
                                  f"{', '.join(losses)}")

    # ------------------------------------------------------------ building
    @classmethod
    def preset(cls, name: str = "default", **settings):
        """The config of a named preset (`PRESET_HELP`), with `settings` (fields by name) on top."""
        if name not in _PRESETS:
            raise ConfigError(f"unknown preset {name!r}; one of {', '.join(_PRESETS)}")
        _check_names(cls, settings)
        return cls(**{**cls.preset_values(name), **settings})

    @classmethod
    def preset_values(cls, name: str) -> dict:
        """The fields that preset `name` sets."""
        values = dict(_PRESETS[name])
        if name == "smoke":
            values["compare_options"] = (cls.design_loss, cls.field_default("loss"))
        return values

    def replace(self, **settings):
        """A copy with `settings` changed (fields by name)."""
        _check_names(type(self), settings)
        return dataclasses.replace(self, **settings)

    @classmethod
    def from_dict(cls, d: dict):
        """From a checkpoint's JSON (`to_dict`); a key that is not a field is named in a warning and ignored."""
        return cls(**known_fields(cls, d))

    def to_dict(self) -> dict:
        """The fields as JSON values (tuples as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    # ------------------------------------------------------------ reading
    @classmethod
    def field_default(cls, name: str):
        _check_names(cls, [name])
        return {f.name: f.default for f in dataclasses.fields(cls)}[name]

    @classmethod
    def compared_fields(cls) -> tuple[str, ...]:
        """The fields that a resumed run must share with its checkpoint."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["compared"])

    @classmethod
    def path_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["path"])

    def changes(self) -> dict:
        """{field: value} where this config differs from the measured defaults."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}

    def rows(self) -> list[tuple[str, str, object, object, str]]:
        """(group, field, value, default, help) per field, in group order."""
        fields = sorted(dataclasses.fields(self), key=lambda f: GROUPS.index(f.metadata["group"]))
        return [(f.metadata["group"], f.name, getattr(self, f.name), f.default, f.metadata["help"]) for f in fields]

    def __str__(self) -> str:
        lines, group = [f"{type(self).__name__} (the {self.stage} stage)"], None
        for g, name, value, default, _ in self.rows():
            if g != group:
                lines.append(f"  {g}:")
                group = g
            changed = f"  (default {default!r})" if value != default else ""
            lines.append(f"    {name} = {value!r}{changed}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter's display: one row per field, grouped; values that differ from the defaults in bold."""
        e = html.escape
        rows = []
        for g, name, value, default, help_ in self.rows():
            shown = f"<b>{e(repr(value))}</b> (default {e(repr(default))})" if value != default else e(repr(value))
            rows.append(f"<tr><td>{e(g)}</td><td><code>{e(name)}</code></td><td style='text-align:left'>{shown}"
                        f"</td><td style='text-align:left'>{e(help_)}</td></tr>")
        return (f"<p><b>{type(self).__name__}</b> (the {self.stage} stage)</p><table><thead><tr><th>group</th>"
                "<th>field</th><th>value</th><th>what it does</th></tr></thead><tbody>" + "".join(rows)
                + "</tbody></table>")


def _like(name: str, default):
    """The shared field `name` with this stage's default (same group, help and checks)."""
    return field(default=default, metadata=_SHARED[name].metadata)


def _stage_config(cls):
    """A frozen, keyword-only dataclass whose constructor names an unknown field with the known ones."""
    cls = dataclass(frozen=True, kw_only=True, repr=True)(cls)
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, **kwargs):
        _check_names(type(self), kwargs)
        init(self, **kwargs)

    cls.__init__ = __init__
    return cls


StageConfig = dataclass(frozen=True, kw_only=True)(StageConfig)
_SHARED = {f.name: f for f in dataclasses.fields(StageConfig)}


@_stage_config
class MaskConfig(StageConfig):
    """Stage 1, the mask network: damaged gray -> the hole."""

    stage: ClassVar[str] = "mask"
    design_loss: ClassVar[str] = "l2+perceptual"

    loss: str = setting("bce+dice", LOSS, "l2+perceptual (the design's), bce, dice or bce+dice (the best recall in the "
                        "recorded comparison); auto: the comparison's winner on recall",
                        choices=MASK_LOSSES + ("auto",))


@_stage_config
class ColorConfig(StageConfig):
    """Stage 2, the colour network: gray + mask -> chroma. The classify losses train a head over quantised chroma
    bins, the others a regression head."""

    stage: ClassVar[str] = "color"
    design_loss: ClassVar[str] = "perceptual"

    lr: float = _like("lr", 5e-4)
    loss: str = setting("classify", LOSS, "classify (Zhang et al.'s classification over chroma bins: the best hue and "
                        "score in the recorded comparison), classify+perceptual, classify+hist, perceptual (the "
                        "design's), perceptual+l1, l1, perceptual+l1+hue; auto: the comparison's winner on score",
                        choices=COLOR_LOSSES + ("auto",))
    rebalance_lambda: float = setting(0.5, LOSS, "classify losses: the class rebalancing's mix with uniform (Zhang et "
                                      "al.'s lambda; 1.0: no rebalancing)")


@_stage_config
class InpaintConfig(StageConfig):
    """Stage 3, the inpaint network: the hole's luminance, on windows of the full-resolution image around it."""

    stage: ClassVar[str] = "inpaint"
    design_loss: ClassVar[str] = "l1+gan"

    block: str = setting("ffc", MODEL, "the network's middle blocks: ffc (fast Fourier convolutions), gated (dilated "
                         "gated convolutions) or unet (an EfficientNet UNet; the encoder fields apply to it only)",
                         choices=INPAINT_BLOCKS)
    loss: str = setting("l1+mssim", LOSS, "l1+mssim (L1 + the metric's masked SSIM: the best held-out masked SSIM), "
                        "l1+gan (the design's), l1+mssim+perceptual, l1+mssim+gan; auto: the comparison's winner on "
                        "masked SSIM", choices=INPAINT_LOSSES + ("auto",))
    prefill: str = setting("biharmonic", DATA, "the hole's first fill, which the network refines: biharmonic "
                           "(full-resolution biharmonic, the stronger start) or telea (OpenCV)", choices=PREFILLS)
    hole_weight: float = setting(6.0, LOSS, "the L1 term's weight inside the hole (outside: 1)")
    ssim_weight: float = setting(1.0, LOSS, "the masked SSIM term's weight (losses with mssim)")
    gan_weight: float = setting(0.01, LOSS, "the adversarial term's weight (losses with gan)")
    d_lr: float = setting(2e-4, OPTIMISER, "the discriminator's learning rate (losses with gan)")
    compare_steps: int = _like("compare_steps", 60)
    compare_blocks: tuple[str, ...] = setting(INPAINT_BLOCKS, COMPARISON, "the middle blocks compared (with the "
                                              "l1+mssim loss) before the losses", choices=INPAINT_BLOCKS)

    @classmethod
    def preset_values(cls, name: str) -> dict:
        values = super().preset_values(name)
        if name == "smoke":
            values["compare_blocks"] = INPAINT_BLOCKS[:2]
        return values


CONFIGS = {c.stage: c for c in (MaskConfig, ColorConfig, InpaintConfig)}
STAGES = tuple(CONFIGS)
PRESETS = tuple(_PRESETS)
# the loss each stage trains with unless told ('auto' without a comparison): its config's default
MEASURED_DEFAULT = {name: c.field_default("loss") for name, c in CONFIGS.items()}
STAGE_LOSSES = {"mask": MASK_LOSSES, "color": COLOR_LOSSES, "inpaint": INPAINT_LOSSES}


def config_class(stage: str) -> type[StageConfig]:
    """MaskConfig, ColorConfig or InpaintConfig by stage name."""
    if stage not in CONFIGS:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return CONFIGS[stage]


def default_preset() -> str:
    """The training notebooks' default preset: 'smoke' when $IMAGE_RESTORE_SMOKE is 1/true/yes/on, else 'default'."""
    from .paths import smoke_default

    return "smoke" if smoke_default() else "default"


def changed_fields(old: dict, new: dict, cls: type[StageConfig]) -> dict:
    """{field: (stored, now)} for the compared fields (`cls.compared_fields`) in which two configs' dicts differ;
    a field that `old` lacks (a checkpoint written before it existed) is not compared."""
    return {k: (old[k], new.get(k)) for k in cls.compared_fields() if k in old and old[k] != new.get(k)}


__all__ = ["COLOR_LOSSES", "CONFIGS", "ColorConfig", "ConfigError", "GROUPS", "INPAINT_BLOCKS", "LR_SCHEDULES",
           "INPAINT_LOSSES", "InpaintConfig", "MASK_LOSSES", "MEASURED_DEFAULT", "MaskConfig", "PRESETS",
           "PRESET_HELP", "PRETRAINED", "STAGES", "STAGE_LOSSES", "StageConfig", "TRAIN_SOURCES", "changed_fields",
           "config_class", "default_preset", "setting"]
