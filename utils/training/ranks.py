"""What every rank of a multi-process (DDP) training run needs, and nothing else: a stage's networks wrapped for
DDP with its NaN guards agreeing across ranks (`prepare_stage`), BatchNorm buffers averaged (`sync_buffers`) and
one record per epoch for all ranks (`sync_epoch`, called by `utils.loop.fit`). With a single process (no
process group) each is a no-op or returns its input. Launching and building the stages is utils.distributed.
"""
from __future__ import annotations

import torch


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


def all_ranks(flag: bool, device) -> bool:
    """True when `flag` is true on every rank (one tiny all-reduce; the flag itself without a process group)."""
    if not _dist_ready():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
    return bool(t.item())


def _unwrap(module):
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def prepare_stage(stage, accelerator):
    """Wrap the stage's networks for DDP (`accelerator.prepare_model`) and make its NaN guards agree across
    ranks, without changing the Stage class: `stage.nets` keeps the plain modules (what validation, saving and
    `load_state` use; DDP shares their parameters), and only `train_step` sees the DDP wrappers. The skip
    decisions (a non-finite batch or loss) are all-reduced, so that no rank enters a backward pass (a collective)
    that another skips. Returns the stage."""
    if getattr(stage, "_prepared_for", None) is accelerator:
        return stage
    plain = dict(stage.nets)
    wrapped = {stem: (accelerator.prepare_model(m), cfg) for stem, (m, cfg) in plain.items()}
    step, device = stage.train_step, stage.device
    local_batch_ok = type(stage).batch_is_finite

    def train_step(batch):
        stage.nets = wrapped
        try:
            return step(batch)
        finally:
            stage.nets = plain

    def batch_is_finite(batch):
        return all_ranks(local_batch_ok(batch), device)

    def agree(flag):
        return all_ranks(flag, device)

    stage.train_step, stage.batch_is_finite, stage.agree = train_step, batch_is_finite, agree
    stage._prepared_for = accelerator
    return stage


def sync_buffers(stage) -> None:
    """Average the floating-point buffers (BatchNorm running mean/var) of the stage's networks over the ranks:
    each rank's last forward pass updated them with its own batch, and the checkpoint must be the same on every
    rank. Integer buffers (num_batches_tracked) are equal on every rank already."""
    if not _dist_ready():
        return
    world = torch.distributed.get_world_size()
    for m, _ in stage.nets.values():
        for b in _unwrap(m).buffers():
            if b.is_floating_point():
                torch.distributed.all_reduce(b.data)
                b.data /= world


def sync_epoch(accelerator, stage, record: dict) -> dict:
    """Called by `fit` on every rank at the end of an epoch: buffers averaged (`sync_buffers`), and one record
    for the epoch: the images of all ranks, the slowest rank's seconds, the training losses averaged over the
    ranks. Returns that record (the same on every rank)."""
    sync_buffers(stage)
    if accelerator.num_processes == 1:
        return record
    from accelerate.utils import gather_object

    records = gather_object([record])
    out = dict(records[0])
    seconds = max(r["train_seconds"] for r in records)
    out["images"] = sum(r["images"] for r in records)
    out["skipped_steps"] = max(r["skipped_steps"] for r in records)
    out["train_seconds"] = seconds
    out["images_per_s"] = round(out["images"] / seconds, 3) if seconds > 0 else None
    out["processes"] = accelerator.num_processes
    for k in out:
        if k.startswith("train_") and k != "train_seconds":
            out[k] = sum(r[k] for r in records) / len(records)
    return out


__all__ = ["all_ranks", "prepare_stage", "sync_buffers", "sync_epoch"]
