"""A batch that does not fit in GPU memory: the stage trains it in passes of half as many images with their
gradients accumulated into the batch's one optimizer step (the effective batch stays), says so once per new pass
size, and keeps that size. The out-of-memory errors come from stand-in steps that raise
torch.cuda.OutOfMemoryError above a number of images, as CUDA's allocator would."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

import utils
from utils.training.stages import Stage


def out_of_memory(n):
    return torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n * 64} MiB (stand-in)")


class StandIn(Stage):
    """A small net without BatchNorm and a per-image mean loss: accumulated passes give the whole batch's gradient,
    so a split step must give the same weights as a whole one. `fits`: the most images a pass may hold."""

    name = "mask"         # (its config: a MaskConfig in fp32)

    def __init__(self, fits=None):
        super().__init__(None, "cpu", {"amp": "off"})
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 1, 3, padding=1))
        self.nets = {"mask": (net, {})}
        self.opts = {"opt": torch.optim.AdamW(net.parameters(), lr=1e-2)}
        self.fits, self.passes = fits, []

    def _train_step(self, batch):
        def losses(chunk, whole):
            if self.fits is not None and len(chunk["x"]) > self.fits:
                raise out_of_memory(len(chunk["x"]))
            self.passes.append(len(chunk["x"]))
            return {"loss": F.mse_loss(self.net(chunk["x"]), chunk["y"])}

        return self._optimise("opt", self.net, batch, losses)


def batches(n_steps=3, n=8):
    g = torch.Generator().manual_seed(1)
    return [{"x": torch.rand(n, 1, 16, 16, generator=g), "y": torch.rand(n, 1, 16, 16, generator=g)}
            for _ in range(n_steps)]


@pytest.mark.parametrize("fits,passes", [(4, [4, 4]), (3, [2, 2, 2, 2])])
def test_a_split_batch_gives_the_whole_batchs_step(fits, passes):
    whole, split = StandIn(), StandIn(fits=fits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs = [(whole.train_step(b), split.train_step(b)) for b in batches()]
    for a, b in logs:
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)        # the passes' losses add up to the batch's
    for p, q in zip(whole.net.parameters(), split.net.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    # one optimizer step per batch: AdamW counted 3 steps in both
    assert {float(s["step"]) for s in split.opts["opt"].state.values()} == {3.0}
    # the pass size is halved until it fits (8 -> 4, or 8 -> 4 -> 2), said once per new size, then kept
    assert split.micro_batch == passes[0] and split.passes[-len(passes):] == passes
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    sizes = [8, 4] if fits == 4 else [8, 4, 2]
    assert messages == [f"mask: out of GPU memory with {a} images per pass; training on in passes of {b} images, "
                        f"{8 // b} passes accumulated into each step of 8 images (same effective batch)"
                        for a, b in zip(sizes, sizes[1:])]


def test_out_of_memory_with_one_image_per_pass_is_raised():
    stage = StandIn(fits=0)
    with pytest.warns(RuntimeWarning, match="passes of 1 images"), pytest.raises(torch.cuda.OutOfMemoryError):
        stage.train_step(batches(1, n=2)[0])


@pytest.mark.slow
def test_fit_trains_on_through_out_of_memory(sample_data, tmp_path):
    """A real stage in `fit`, its network standing in for a GPU that holds 2 images at a time: the run goes on in
    passes of 2, with one message, the same images per step and no step skipped."""
    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"], size=64, augment=False)
    torch.manual_seed(0)
    stage = utils.MaskStage(image_size=64, pretrained="none")
    forward = stage.net.forward

    def small_gpu(x, *args, **kwargs):
        if x.shape[0] > 2:
            raise out_of_memory(x.shape[0])
        return forward(x, *args, **kwargs)

    stage.net.forward = small_gpu
    with pytest.warns(RuntimeWarning, match=r"with 4 images per pass; training on in passes of 2 images, 2 passes"):
        history = utils.fit(stage, ds, 2, tmp_path, batch_size=4, steps_per_epoch=2, progress=False)
    assert stage.micro_batch == 2
    assert [h["images"] for h in history] == [8, 8] and [h["skipped_steps"] for h in history] == [0, 0]
    assert all(np.isfinite(h["train_loss"]) for h in history)


def test_the_gan_steps_split_too(sample_data):
    """The inpainter with its discriminator: both optimizers' steps are split (the generator's output is recomputed
    per pass for the discriminator's)."""
    base = utils.SyntheticDamageDataset(utils.load_train_table(sample_data)["gt_image_path"], size=32, augment=False)
    batch = default_collate([utils.InpaintDataset(base, 32)[i] for i in range(4)])
    torch.manual_seed(0)
    stage = utils.InpaintStage(loss="l1+mssim+gan", image_size=32)
    stage.train_mode()
    g, d = stage.nets["inpaint"][0], stage.nets["inpaint_disc"][0]
    calls = []
    for net in (g, d):
        def limited(*args, _forward=net.forward, **kwargs):
            calls.append(args[0].shape[0])
            if args[0].shape[0] > 2:
                raise out_of_memory(args[0].shape[0])
            return _forward(*args, **kwargs)
        net.forward = limited
    with pytest.warns(RuntimeWarning, match="passes of 2 images"):
        logs = stage.train_step(batch)
    assert {"d_loss", "g_loss", "gan"} <= logs.keys() and all(np.isfinite(v) for v in logs.values())
    assert stage.micro_batch == 2 and calls[0] == 4 and set(calls[1:]) == {2}
    assert {float(s["step"]) for o in stage.opts.values() for s in o.state.values()} == {1.0}
