"""Training on several GPUs (or CPU processes) through Hugging Face accelerate.

One process per device, each with its own copy of the stage's networks wrapped in DistributedDataParallel
(gradients averaged over the processes in every backward pass), its own share of every epoch's batches
(`accelerator.prepare_data_loader` in `utils.loop.fit`), the same weights on every rank after each epoch
(BatchNorm running statistics averaged over the ranks), and checkpoints written by the main process only, with
the same safetensors + JSON + train-state files as the single-process path (so a run resumes either way).

Every process builds its data and stage from the stage's config (utils.train_config), the one object that the
notebooks, tools/train.py and these functions pass:

    accelerate launch --num_processes 2 tools/train.py --stage mask --data-dir data --ckpt-dir checkpoints
    utils.distributed.launch(utils.MaskConfig(epochs=6), num_processes=2, data_dir=..., ckpt_dir=...)  # a notebook
    stage, history = utils.train_stage(config, train_ds, val_fn=..., ckpt_dir=..., num_processes=n)   # notebooks 02-04

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

from ..core.runtime import choose_precision
from ..core.train_config import StageConfig
from .ranks import prepare_stage  # the per-rank plumbing

# utils.runtime.choose_precision's answer -> accelerate's mixed_precision
ACCELERATE_PRECISION = {"bf16": "bf16", "fp16": "fp16", "off": "no"}


# ---------------------------------------------------------------- data and stages, as notebooks 02-04 build them
def stage_data(config: StageConfig, data_dir=None, device="auto"):
    """(run, train_ds, val_ds) for a stage's config: `utils.prepare_run`'s split of data_dir (run: the data dir,
    the device picked from `device`, the train and validation photos), the training set of config.train_source
    (for inpaint, windows around each hole: `InpaintDataset`) and the fixed validation set. A relative
    config.photos is taken from the repository root."""
    from ..core.paths import project_path
    from ..data import datasets

    c = config
    run = datasets.prepare_run(data_dir, device, c.seed, max_train=c.max_train, max_val=c.val_count)
    train_ds, val_ds = datasets.train_val_datasets(
        run["train_paths"], run["val_paths"], c.image_size, c.seed, repeats=c.repeats, train_source=c.train_source,
        train_table=run["train_table"], photos=c.photos and project_path(c.photos), data_dir=run["data_dir"],
        crop_scale=c.crop_scale, stroke_share=c.stroke_share)
    if c.stage == "inpaint":
        train_ds = datasets.InpaintDataset(train_ds, c.image_size, c.prefill)
    return run, train_ds, val_ds


def build(config: StageConfig, device="cpu", data_dir=None):
    """(stage, train_ds, val_fn) for a stage's config, as notebooks 02-04 build them: its data (`stage_data`)
    and its stage (`utils.make_stage`: 'auto' is the measured loss, `utils.losses.MEASURED_DEFAULT`, since no
    comparison runs here), validated by the stage's validate function."""
    from . import evaluation
    from .stages import make_stage

    run, train_ds, val_ds = stage_data(config, data_dir, "cpu")
    stage = make_stage(config, device)
    validate = {"mask": evaluation.validate_mask, "color": evaluation.validate_color,
                "inpaint": evaluation.validate_inpaint}[config.stage]
    return stage, train_ds, functools.partial(validate, val_ds=val_ds)


def train(config: StageConfig, data_dir=None, ckpt_dir=None, resume: bool = True, validate: bool = True,
          cpu: bool = False, progress: bool = True) -> dict:
    """One process's part of a (possibly multi-process) training run: what `accelerate launch tools/train.py`
    and `launch` run in every process. Builds the Accelerator (it reads the launcher's environment), the stage
    of `config` on this process's device, prepares it for DDP and trains with `utils.fit(..., accelerator=...)`.

    `amp` (utils.configs.AMP_MODES) is resolved on this process's device (`choose_precision`: 'auto' is bf16 on
    compute capability 8.0 and up, fp16 on 7.x, fp32 below and on the CPU) and that one precision is given to
    accelerate (`mixed_precision`: its autocast around the DDP forward, and in fp16 its gradient scaler, which the
    stage then steps with and the checkpoint keeps) and to the stage.

    Returns {"history", "stage", "accelerator"} (in every process; only the main process wrote checkpoints)."""
    import os

    from accelerate import Accelerator, PartialState

    from ..core.paths import project_dir
    from .loop import fit

    # without cpu=True accelerate treats CPU processes as independent single-process runs (each would train alone
    # and write the checkpoint): on a machine without CUDA, ask for the CPU (gloo) explicitly
    cpu = cpu or not torch.cuda.is_available()
    precision = choose_precision(PartialState(cpu=cpu).device, config.amp)   # on this process's device
    accelerator = Accelerator(cpu=cpu, mixed_precision=ACCELERATE_PRECISION[precision])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != world:
        raise RuntimeError(f"{world} processes were launched but accelerate sees {accelerator.num_processes} "
                           f"({accelerator.distributed_type}); each would train alone and write the checkpoint")
    ckpt_dir = project_dir("checkpoints", ckpt_dir)
    data_dir = project_dir("data", data_dir)
    torch.manual_seed(config.seed)           # the same initial weights everywhere (DDP also broadcasts rank 0's)
    stage, train_ds, val_fn = build(config, accelerator.device, data_dir)
    stage.set_precision(precision)
    if accelerator.scaler is not None:      # fp16 on CUDA: one gradient scaler, accelerate's
        stage.scaler = accelerator.scaler
    prepare_stage(stage, accelerator)
    if accelerator.is_main_process and progress:
        print(f"{config.stage}: {accelerator.num_processes} process(es) on {accelerator.device} "
              f"({accelerator.distributed_type}, precision {precision}), {len(train_ds)} train items, global batch "
              f"{config.batch_size * accelerator.num_processes}, checkpoints in {ckpt_dir}", flush=True)
    history = fit(stage, train_ds, None, ckpt_dir, resume=resume, val_fn=val_fn if validate else None,
                  progress=progress, accelerator=accelerator)
    return {"history": history, "stage": stage, "accelerator": accelerator}


def _train_quiet(config, kwargs):
    train(config, **kwargs)          # notebook_launcher ignores return values; the checkpoint is the result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(config: StageConfig, num_processes: int = 1, port: int | None = None, **options) -> list[dict]:
    """Train a stage's config on `num_processes` devices from a notebook (`accelerate.notebook_launcher`, e.g.
    Kaggle's 2xT4: num_processes=2), or in this process when num_processes is 1. `options` are `train`'s
    (data_dir, ckpt_dir, resume, validate, cpu, progress). Returns the history that the main process saved in
    ckpt_dir (load the weights into a stage in this process with `load_trained`)."""
    from ..core.checkpoints import load_train_state
    from ..core.paths import project_dir

    if not isinstance(config, StageConfig):
        raise TypeError(f"launch takes a stage's config (utils.MaskConfig, ColorConfig, InpaintConfig), got {config!r}")
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if num_processes == 1:
        return train(config, **options)["history"]
    # (torch.cuda.is_available() itself would poison the fork: it initialises the CUDA driver; is_initialized doesn't)
    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA is already initialised in this process, so forked training processes cannot use it: "
                           "restart the kernel and keep this process off CUDA until launch() (utils.prepare_run(..., "
                           "device='cpu'), compare_losses=False; not even torch.cuda.is_available(), unless "
                           "PYTORCH_NVML_BASED_CUDA_CHECK=1 was set before it)")
    from accelerate import notebook_launcher

    # each process's Accelerator gets the precision (`train`): 'auto' needs the card, which this process must not
    # touch before the fork
    notebook_launcher(_train_quiet, args=(config, options), num_processes=num_processes,
                      use_port=str(port or free_port()), mixed_precision="no")
    state = load_train_state(project_dir("checkpoints", options.get("ckpt_dir")) / f"{config.stage}.train_state.pt")
    if state is None:
        raise RuntimeError(f"{config.stage}: the launched processes wrote no train state")
    return state["history"]


def load_trained(stage, ckpt_dir) -> dict:
    """Load the weights (and optimizer state) that a launched run saved in ckpt_dir into `stage` (built in this
    process, e.g. on the GPU after `launch` returned) and put it in eval mode, as `fit` leaves a stage; returns
    the train state."""
    from ..core.checkpoints import load_train_state
    from ..core.paths import project_dir

    ckpt_dir = project_dir("checkpoints", ckpt_dir)
    state = load_train_state(ckpt_dir / f"{stage.name}.train_state.pt")
    if state is None:
        raise FileNotFoundError(f"{ckpt_dir}: no {stage.name}.train_state.pt (has the stage been trained there?)")
    stage.load_state(state, ckpt_dir)
    stage.eval_mode()           # as fit leaves it (the notebooks' later cells run the nets as they are)
    return state


def train_stage(config: StageConfig, train_ds, *, ckpt_dir, val_fn=None, data_dir=None, device="auto",
                num_processes: int = 1, resume: bool = True, progress: bool = True):
    """Train one stage as notebooks 02-04 do; -> (the trained stage, its per-epoch history).

    num_processes=1: the stage of `config` (`utils.make_stage`, on the device picked from `device`) is trained in
    this process on `train_ds` with `utils.fit`, validated by `val_fn(stage)` after each epoch.
    num_processes>1 (e.g. Kaggle's 2xT4: 2): `launch` trains on that many devices, one process each, every process
    building its data (from data_dir) and stage from `config`, then the saved weights are loaded into the stage
    built here (this process may use the GPU once the training processes are done). In a notebook, nothing may
    touch CUDA before that (see `launch`)."""
    from ..core.runtime import pick_device
    from .loop import fit
    from .stages import make_stage

    if not isinstance(config, StageConfig):
        raise TypeError(f"train_stage takes a stage's config (utils.MaskConfig, ColorConfig, InpaintConfig), "
                        f"got {config!r}")
    if num_processes > 1:
        history = launch(config, num_processes, data_dir=data_dir, ckpt_dir=ckpt_dir, resume=resume,
                         validate=val_fn is not None, progress=progress)
        stage = make_stage(config, pick_device(device))     # the training processes are done: the GPU is free here
        load_trained(stage, ckpt_dir)
        return stage, history
    stage = make_stage(config, pick_device(device))
    history = fit(stage, train_ds, None, ckpt_dir, resume=resume, val_fn=val_fn, progress=progress)
    return stage, history


__all__ = ["build", "launch", "load_trained", "stage_data", "train", "train_stage"]
