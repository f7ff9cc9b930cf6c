"""Training on several GPUs (or CPU processes) through Hugging Face accelerate.

One process per device, each with its own copy of the stage's networks wrapped in DistributedDataParallel
(gradients averaged over the processes in every backward pass), its own share of every epoch's batches
(`accelerator.prepare_data_loader` in `utils.training.fit`), the same weights on every rank after each epoch
(BatchNorm running statistics averaged over the ranks), and checkpoints written by the main process only, with
the same safetensors + JSON + train-state files as the single-process path (so a run resumes either way).

    accelerate launch --num_processes 2 tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints
    utils.distributed.launch("mask", num_processes=2, data_dir=..., ckpt_dir=..., epochs=6)   # from a notebook
    stage, history = utils.train_stage("mask", make_stage, train_ds, loss=..., ..., num_processes=n)   # notebooks 02-04

`launch` uses `accelerate.notebook_launcher` (fork): in a notebook, nothing may touch CUDA before it is
called, not even `torch.cuda.is_available()` (which `utils.prepare_run(device="auto")` calls; pass device="cpu"), and
the loss comparisons, which train in the notebook's process, are skipped. After it returns, this process may use
the GPU (e.g. `load_trained` into a stage built on it, for the notebooks' later cells).
With num_processes=1 it trains in the calling process (the notebooks' usual path).

The global batch is `batch_size * num_processes` (batch_size is per process) and `steps_per_epoch` counts one
process's steps: an epoch of N images takes N / (batch_size * num_processes) steps.
"""
from __future__ import annotations

import functools
import socket

import torch

from .ranks import all_ranks, prepare_stage, sync_buffers, sync_epoch   # the per-rank plumbing (re-exported)

STAGES = ("mask", "color", "inpaint")
# per-stage options that `build` passes to the stage (the notebooks' parameters of the same names)
STAGE_OPTIONS = {
    "mask": ("loss", "lr", "encoder", "pretrained", "init_weights"),
    "color": ("loss", "lr", "encoder", "pretrained", "init_weights", "rebalance_lambda"),
    "inpaint": ("loss", "lr", "d_lr", "gan_weight", "ssim_weight", "hole_weight", "encoder", "pretrained", "init_weights",
                "block"),
}
DATA_OPTIONS = ("image_size", "repeats", "train_source", "photos", "crop_scale", "val_count", "max_train", "gray_share",
                "stroke_share")


# ---------------------------------------------------------------- stages and data, as notebooks 02-04 build them
def build(stage_name: str, device="cpu", data_dir=None, seed: int = 0, image_size: int = 256, repeats: int = 1,
          train_source: str = "synthetic", val_count: int | None = 48, max_train: int | None = None,
          gray_share: float = 0.1, photos=None, crop_scale=(1.0, 3.0), stroke_share: float = 0.0, **stage_options):
    """(stage, train_ds, val_fn) for one of 'mask', 'color', 'inpaint', with the notebooks' defaults: the same
    data split (`utils.prepare_run`), data sets (`utils.train_val_datasets`; `stroke_share` of the synthetic damage
    is free-form strokes instead of polygons) and stage options (loss, lr, encoder,
    pretrained; for inpaint also d_lr, gan_weight, ssim_weight, hole_weight and gray_share). `loss` is one of the
    stage's names in utils.losses (none, or 'auto': the measured default, `utils.losses.MEASURED_DEFAULT`, since
    no comparison runs here)."""
    from . import datasets, evaluation, stages
    from .losses import choose_loss

    if stage_name not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage_name!r}")
    unknown = set(stage_options) - set(STAGE_OPTIONS[stage_name])
    if unknown:
        raise TypeError(f"{stage_name}: unknown option(s) {sorted(unknown)}; known: "
                        f"{sorted(STAGE_OPTIONS[stage_name] + DATA_OPTIONS)}")
    opts = {k: v for k, v in stage_options.items() if v is not None}
    run = datasets.prepare_run(data_dir, "cpu", seed, max_train=max_train, max_val=val_count)
    train_ds, val_ds = datasets.train_val_datasets(run["train_paths"], run["val_paths"], image_size, seed,
                                                   repeats=repeats, train_source=train_source,
                                                   train_table=run["train_table"], photos=photos,
                                                   data_dir=run["data_dir"], crop_scale=crop_scale,
                                                   stroke_share=stroke_share)
    common = {"device": device, "size": image_size, "pretrained": "auto"}     # the notebooks' default
    for k in ("encoder", "pretrained"):
        if k in opts:
            common[k] = opts.pop(k)
    loss = choose_loss(stage_name, opts.pop("loss", "auto"))
    init_weights = opts.pop("init_weights", None)
    if stage_name == "mask":
        stage = stages.MaskStage(loss=loss, **opts, **common)
        val_fn = functools.partial(evaluation.validate_mask, val_ds=val_ds)
    elif stage_name == "color":
        stage = stages.ColorStage(loss=loss, **opts, **common)
        val_fn = functools.partial(evaluation.validate_color, val_ds=val_ds)
    else:
        stage = stages.InpaintStage(loss=loss, **opts, **common)
        train_ds = datasets.InpaintDataset(train_ds, image_size, gray_share)
        val_fn = functools.partial(evaluation.validate_inpaint, val_ds=val_ds)
    if init_weights:
        stage.init_from(init_weights)
    return stage, train_ds, val_fn


def train(stage_name: str, data_dir=None, ckpt_dir=None, epochs: int = 6, steps_per_epoch: int | None = None,
          batch_size: int = 8, num_workers: int = 1, resume: bool = True, validate: bool = True, seed: int = 0,
          amp: bool | None = None, cpu: bool = False, progress: bool = True, **options) -> dict:
    """One process's part of a (possibly multi-process) training run: what `accelerate launch tools/train.py`
    and `launch` run in every process. Builds the Accelerator (it reads the launcher's environment), the stage on
    this process's device, prepares it for DDP and trains with `utils.fit(..., accelerator=...)`.

    Returns {"history", "stage", "accelerator"} (in every process; only the main process wrote checkpoints)."""
    from accelerate import Accelerator

    from .paths import project_dir
    from .training import fit

    import os

    # without cpu=True accelerate treats CPU processes as independent single-process runs (each would train alone
    # and write the checkpoint): on a machine without CUDA, ask for the CPU (gloo) explicitly
    cpu = cpu or not torch.cuda.is_available()
    accelerator = Accelerator(cpu=cpu, mixed_precision="no")     # the stage does its own bf16 autocast (`amp`)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != world:
        raise RuntimeError(f"{world} processes were launched but accelerate sees {accelerator.num_processes} "
                           f"({accelerator.distributed_type}); each would train alone and write the checkpoint")
    ckpt_dir = project_dir("checkpoints", ckpt_dir)
    data_dir = project_dir("data", data_dir)
    torch.manual_seed(seed)                  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    stage, train_ds, val_fn = build(stage_name, accelerator.device, data_dir, seed, **options)
    if amp is not None:
        stage.amp = amp
    prepare_stage(stage, accelerator)
    if accelerator.is_main_process and progress:
        print(f"{stage_name}: {accelerator.num_processes} process(es) on {accelerator.device} "
              f"({accelerator.distributed_type}), {len(train_ds)} train items, global batch "
              f"{batch_size * accelerator.num_processes}, checkpoints in {ckpt_dir}", flush=True)
    history = fit(stage, train_ds, epochs=epochs, ckpt_dir=ckpt_dir, batch_size=batch_size, num_workers=num_workers,
                  steps_per_epoch=steps_per_epoch, resume=resume, val_fn=val_fn if validate else None, seed=seed,
                  progress=progress, accelerator=accelerator)
    return {"history": history, "stage": stage, "accelerator": accelerator}


def _train_quiet(stage_name, kwargs):
    train(stage_name, **kwargs)          # notebook_launcher ignores return values; the checkpoint is the result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(stage_name: str, num_processes: int = 1, port: int | None = None, **options) -> list[dict]:
    """Train a stage on `num_processes` devices from a notebook (`accelerate.notebook_launcher`, e.g. Kaggle's
    2xT4: num_processes=2), or in this process when num_processes is 1. `options` are `train`'s (data_dir,
    ckpt_dir, epochs, steps_per_epoch, batch_size, num_workers, resume, validate, seed, amp, cpu) and the stage's
    (see `build`). Returns the history that the main process saved in ckpt_dir (load the weights into a stage in
    this process with `load_trained`)."""
    from .paths import project_dir
    from .checkpoints import load_train_state

    if stage_name not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage_name!r}")
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if num_processes == 1:
        return train(stage_name, **options)["history"]
    # (torch.cuda.is_available() itself would poison the fork: it initialises the CUDA driver; is_initialized doesn't)
    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA is already initialised in this process, so forked training processes cannot use it: "
                           "restart the kernel and keep this process off CUDA until launch() (utils.prepare_run(..., "
                           "device='cpu'), compare_losses=False; not even torch.cuda.is_available(), unless "
                           "PYTORCH_NVML_BASED_CUDA_CHECK=1 was set before it)")
    from accelerate import notebook_launcher

    notebook_launcher(_train_quiet, args=(stage_name, options), num_processes=num_processes,
                      use_port=str(port or free_port()), mixed_precision="no")
    state = load_train_state(project_dir("checkpoints", options.get("ckpt_dir")) / f"{stage_name}.train_state.pt")
    if state is None:
        raise RuntimeError(f"{stage_name}: the launched processes wrote no train state")
    return state["history"]


def load_trained(stage, ckpt_dir) -> dict:
    """Load the weights (and optimizer state) that a launched run saved in ckpt_dir into `stage` (built in this
    process, e.g. on the GPU after `launch` returned) and put it in eval mode, as `fit` leaves a stage; returns
    the train state."""
    from .paths import project_dir
    from .checkpoints import load_train_state

    ckpt_dir = project_dir("checkpoints", ckpt_dir)
    state = load_train_state(ckpt_dir / f"{stage.name}.train_state.pt")
    if state is None:
        raise FileNotFoundError(f"{ckpt_dir}: no {stage.name}.train_state.pt (has the stage been trained there?)")
    stage.load_state(state, ckpt_dir)
    stage.eval_mode()           # as fit leaves it (the notebooks' later cells run the nets as they are)
    return state


def train_stage(stage_name: str, make_stage, train_ds, *, loss: str, ckpt_dir, epochs: int, val_fn=None,
                batch_size: int = 8, num_workers: int = 0, steps_per_epoch: int | None = None, seed: int = 0,
                resume: bool = True, device="auto", num_processes: int = 1, progress: bool = True, **options):
    """Train one stage as notebooks 02-04 do; -> (the trained stage, its per-epoch history).

    num_processes=1: `make_stage(loss, device)` (the notebook's own function; `device` picked from `device`) is
    trained in this process on `train_ds` with `utils.fit`, validated by `val_fn(stage)` after each epoch.
    num_processes>1 (e.g. Kaggle's 2xT4: 2): `launch` trains on that many devices, one process each, every process
    building its data and stage from `options` (data_dir, amp, cpu and `build`'s: image_size, repeats, train_source, photos,
    crop_scale, val_count, max_train, gray_share and the stage's lr, encoder, pretrained, ...; ignored with one
    process, but checked in both cases), then the saved weights are loaded into `make_stage(loss, device)` built
    here (this process may use the GPU once the training processes are done). In a notebook, nothing may touch
    CUDA before that (see `launch`)."""
    from .runtime import pick_device
    from .training import fit

    if stage_name not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage_name!r}")
    known = STAGE_OPTIONS[stage_name] + DATA_OPTIONS + ("data_dir", "amp", "cpu")     # (the last three: `train`'s)
    unknown = set(options) - set(known)
    if unknown:
        raise TypeError(f"{stage_name}: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    if num_processes > 1:
        history = launch(stage_name, num_processes, ckpt_dir=ckpt_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                         batch_size=batch_size, num_workers=num_workers, resume=resume, validate=val_fn is not None,
                         seed=seed, progress=progress, loss=loss, **options)
        stage = make_stage(loss, pick_device(device))     # the training processes are done: the GPU is free here
        load_trained(stage, ckpt_dir)
        return stage, history
    stage = make_stage(loss, pick_device(device))
    history = fit(stage, train_ds, epochs=epochs, ckpt_dir=ckpt_dir, batch_size=batch_size, num_workers=num_workers,
                  steps_per_epoch=steps_per_epoch, resume=resume, val_fn=val_fn, seed=seed, progress=progress)
    return stage, history


__all__ = ["all_ranks", "build", "launch", "load_trained", "prepare_stage", "sync_buffers", "sync_epoch", "train",
           "train_stage"]
