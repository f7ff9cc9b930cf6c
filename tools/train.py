"""Train one stage from the command line, on one device or several (Hugging Face accelerate).

    python tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints --epochs 6            # one device
    accelerate launch --multi_gpu --num_processes 2 tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints
    accelerate launch --multi_gpu --num_processes 2 tools/train.py --cpu --stage color --steps-per-epoch 5  # CPU, gloo

(`accelerate launch --cpu --num_processes 2` starts ONE process: accelerate runs several CPU processes only
through mpirun. `--multi_gpu` starts them with torch.distributed.run, and the script's own --cpu keeps them on
the CPU; `torchrun --nproc_per_node 2 tools/train.py ...` does the same.)

The flags after the run's own (--stage, --preset, --data-dir, --ckpt-dir, --no-resume, --no-validate, --cpu) are
the fields of the stage's config (utils.train_config: MaskConfig, ColorConfig, InpaintConfig), generated from
them with their help and defaults: the same config, stages, data sets and checkpoints as notebooks 02-04
(utils.distributed), written by the main process only. A flag that is not a field of the chosen stage is an error.
An interrupted run resumes from its last epoch (--no-resume starts over; resuming with other settings than the
checkpoint's, e.g. another --loss, --lr, --batch-size, --train-source or other data, is refused with exit code 2,
naming them; more --epochs or another --steps-per-epoch continue it). --batch-size is per process (the global
batch is batch size x processes) and --steps-per-epoch counts one process's steps. The notebooks' loss
comparisons and hue calibration are not run here: the config's loss is trained ('auto': the measured default),
and the notebooks' later cells (or notebook 05) run on the checkpoints afterwards.

--amp sets the precision, the same in every process and for accelerate (its mixed_precision): auto (the default)
is bf16 on cards of compute capability 8.0 and up (A100, H100), fp16 with a gradient scaler on 7.x (T4, V100),
fp32 on older cards (P100) and on the CPU. A batch that runs out of GPU memory is trained in smaller passes with
their gradients accumulated (one message names the pass size); the effective batch stays --batch-size.

Paths (--data-dir, --ckpt-dir, --photos, --init-weights) are taken from the working directory. A --data-dir (or
$IMAGE_RESTORE_DATA) must hold a dataset: only the default data/ of the repository gets the sample dataset built
when it holds none.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing

from utils.core.images import DataError
from utils.core.paths import cli_path, project_dir
from utils.core.train_config import (
    COMPARISON,
    CONFIGS,
    GROUPS,
    PRESET_HELP,
    PRESETS,
    STAGES,
    ConfigError,
    config_class,
)
from utils.data.sample_data import check_data_dir


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def config_fields() -> dict[str, list]:
    """{field name: [(config class, field), ...]} for every stage's fields that have a flag (not the notebooks'
    comparison group), in the configs' order."""
    out: dict[str, list] = {}
    for cls in CONFIGS.values():
        for f in dataclasses.fields(cls):
            if f.metadata["group"] != COMPARISON:
                out.setdefault(f.name, []).append((cls, f))
    return out


def _argument(name: str, owners: list) -> tuple[str, dict]:
    """The flag and add_argument options of a config field, from its type, choices, help and each stage's default."""
    cls, f = owners[0]
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, type(int | None)):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    options: dict = {"dest": name, "default": argparse.SUPPRESS}
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        options.update(nargs="+" if items[-1] is Ellipsis else len(items), type=items[0])
    else:
        options["type"] = _bool if hint is bool else hint
    if f.metadata["choices"] and len({fo.metadata["choices"] for _, fo in owners}) == 1:
        options["choices"] = f.metadata["choices"]       # (the loss names differ by stage: the config checks them)
    helps = {c.stage: fo.metadata["help"] for c, fo in owners}
    text = f.metadata["help"] if len(set(helps.values())) == 1 else "; ".join(f"{s}: {h}" for s, h in helps.items())
    defaults = {c.stage: fo.default for c, fo in owners}
    if len(set(map(repr, defaults.values()))) == 1 and len(owners) == len(STAGES):
        said = f"default: {next(iter(defaults.values()))!r}"
    else:
        said = "default: " + ", ".join(f"{s} {d!r}" for s, d in defaults.items())
        if len(owners) < len(STAGES):
            said = f"{'/'.join(defaults)} only; {said}"
    options["help"] = f"{text} ({said})".replace("%", "%%")
    return "--" + name.replace("_", "-"), options


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=STAGES, required=True)
    ap.add_argument("--preset", choices=PRESETS, default="default", help="the config's named preset, the flags "
                    "below changing it: " + "; ".join(f"{k}: {v}" for k, v in PRESET_HELP.items()))
    ap.add_argument("--data-dir", default=None, help="a folder in the competition layout (default: "
                    "$IMAGE_RESTORE_DATA, else data/ in the repository, where the sample dataset is built if none is "
                    "there)")
    ap.add_argument("--ckpt-dir", default=None, help="checkpoints (default: $IMAGE_RESTORE_CHECKPOINTS, else "
                    "checkpoints/)")
    ap.add_argument("--no-resume", dest="resume", action="store_false", help="train from scratch over ckpt-dir")
    ap.add_argument("--no-validate", dest="validate", action="store_false", help="skip the per-epoch validation")
    ap.add_argument("--cpu", action="store_true", help="train on the CPU even when CUDA is there")
    groups = {g: ap.add_argument_group(f"the config: {g}") for g in GROUPS if g != COMPARISON}
    for name, owners in config_fields().items():
        flag, options = _argument(name, owners)
        groups[owners[0][1].metadata["group"]].add_argument(flag, **options)
    return ap


def config_from_args(args: argparse.Namespace):
    """The stage's config: the preset with the config flags given on top (paths from the working directory)."""
    cls = config_class(args.stage)
    given = {k: v for k, v in vars(args).items() if k in config_fields()}
    for k in cls.path_fields():
        if given.get(k) is not None:
            given[k] = str(cli_path(given[k]))
    wrong = [k for k in given if k not in {f.name for f in dataclasses.fields(cls)}]
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        others = sorted({c.stage for k in wrong for c, _ in config_fields()[k]})
        raise ConfigError(f"{flags}: not a setting of the {args.stage} stage (only of {'/'.join(others)})")
    return cls.preset(args.preset, **given)


def parse(argv=None) -> tuple[argparse.Namespace, object]:
    """(the run's options, the stage's config)."""
    ap = parser()
    args = ap.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as e:
        ap.error(str(e))
    # paths typed here are taken from the working directory (utils.distributed.train takes a relative one from the
    # repository root, as the notebooks do): hand it absolute ones
    for k in ("data_dir", "ckpt_dir"):
        if getattr(args, k) is not None:
            setattr(args, k, str(cli_path(getattr(args, k))))
    try:        # a data dir without a dataset stops here, before any process trains (only data/ gets sample data)
        check_data_dir(args.data_dir or project_dir("data"))
    except DataError as e:
        ap.error(str(e))
    return args, config


def main(argv=None) -> int:
    args, config = parse(argv)
    from utils.training.distributed import train
    from utils.training.loop import SettingsChangedError

    try:
        result = train(config, data_dir=args.data_dir, ckpt_dir=args.ckpt_dir, resume=args.resume,
                       validate=args.validate, cpu=args.cpu)
    except SettingsChangedError as e:      # every rank refuses alike (same train state); one line, from the first
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"error: {e.path}: this checkpoint was trained with other settings ({e.lines}); resuming would mix "
                  "them: pass --no-resume to train from scratch over it, or another --ckpt-dir for the new settings",
                  file=sys.stderr)
        return 2
    if result["accelerator"].is_main_process:
        last = result["history"][-1] if result["history"] else {}
        print(json.dumps({"stage": config.stage, "epochs": len(result["history"]), "last": last}, default=str))
    result["accelerator"].end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
